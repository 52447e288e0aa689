"""Macros kept with their label area painted over, and DICOM WSI labels replaced.

``[wsi] macro = "blank-label"``: slides of every vendor with a macro are
generated whose macro (``slides.slide_photo``) shows a paper label printed
with the PHI at one end and tissue at the other, both ends tried.  After the
run openslide still shows a macro of the same size; its label end is one flat
colour, its tissue end what it was (up to JPEG re-encoding); tesseract reads
the PHI in the input's macro and none of it in the output's; no PHI bytes
and no bytes of the old macro are left.  A macro whose label end cannot be
told is removed, and the manifest flag says why.

``[wsi] dicom_label = "replace"``: a DICOM WSI LABEL instance (built with
pydicom, the PHI printed in its pixels) comes out with a generated label
that tesseract reads as the slide pseudonym, the attributes cleaned by
medscrub-dicom's profile, UIDs shared with the slide's other instances, and
no dciodvfy error its input did not have.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import mrxs_slides  # noqa: E402
import slides  # noqa: E402

from medscrub import BadInput  # noqa: E402
from medscrub.context import RunConfig, RunContext  # noqa: E402
from medscrub.pipeline import run_batch  # noqa: E402
from medscrub.pseudonyms import Secret  # noqa: E402
from medscrub_wsi.edit import Rewrite  # noqa: E402
from medscrub_wsi.macro import find_label, is_blanked, paint  # noqa: E402
from medscrub_wsi.tiff import STRIP_OFFSETS, TiffStructure  # noqa: E402

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("imagecodecs")
openslide = pytest.importorskip("openslide")
pytesseract = pytest.importorskip("pytesseract")
from PIL import Image  # noqa: E402

try:
    pytesseract.get_tesseract_version()
except Exception:  # pragma: no cover - the Debian package tesseract-ocr is missing
    pytest.skip("tesseract is not installed (Debian: apt-get install tesseract-ocr)", allow_module_level=True)

SECRET = Secret(b"b" * 32)
# what tesseract must not read in an output (and reads in each input macro)
PRINTED = ["Kowalczyk", "Marianna", slides.MRN, "55123", "2021-03-14"]
BLANK = '[wsi]\nmacro = "blank-label"\nrename_files = false\n\n[run]\ndeep_verify = true\n'

# vendor -> (file name, writer)
TIFF_SLIDES = {
    "aperio": ("a.svs", lambda path, macro: slides.write_svs(path, macro=macro)),
    "hamamatsu": ("b.ndpi", lambda path, macro: slides.write_ndpi(path, macro=macro)),
    "hamamatsu-first": ("c.ndpi", lambda path, macro: slides.write_ndpi(path, macro_last=False, macro=macro)),
    "philips": ("d.tiff", lambda path, macro: slides.write_philips(path, macro=macro)),
    "ventana": ("e.bif", lambda path, macro: slides.write_bif(path, macro=macro)),
}


def run(inp: Path, out: Path, recipe: str, plugins: tuple[str, ...] = ("wsi",)):
    path = inp.parent / f"{out.name}.toml"
    path.write_text(recipe)
    return run_batch(RunConfig(path, SECRET, inp, out, plugins=plugins))


def read_text(image: np.ndarray) -> str:
    return pytesseract.image_to_string(Image.fromarray(image))


def macro_of(path: Path) -> np.ndarray:
    with openslide.OpenSlide(str(path)) as slide:
        return np.asarray(slide.associated_images["macro"].convert("RGB"))


def macro_bytes(path: Path, vendor: str) -> list[bytes]:
    """The strips of the input's macro IFD."""
    index = {"aperio": 4, "hamamatsu": 2, "hamamatsu-first": 0, "philips": 3, "ventana": 0}[vendor]
    with tifffile.TiffFile(path, is_ndpi=path.suffix == ".ndpi") as tf, open(path, "rb") as f:
        page = tf.pages[index]
        chunks = []
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
            f.seek(offset)
            chunks.append(f.read(count))
    return chunks


def halves(image: np.ndarray, end: str) -> tuple[np.ndarray, np.ndarray]:
    """(the label end's third, less a rim; the tissue half) of a photo."""
    long_side = image.shape[1] if end in ("left", "right") else image.shape[0]
    third, half = long_side // 3 - 8, long_side // 2
    if end == "left":
        return image[:, :third], image[:, half:]
    if end == "right":
        return image[:, -third:], image[:, :half]
    if end == "top":
        return image[:third], image[half:]
    return image[-third:], image[:half]


def assert_blanked(before: np.ndarray, after: np.ndarray, end: str) -> None:
    assert after.shape == before.shape
    label, _ = halves(after, end)
    assert float(label.astype(np.float32).std()) < 3, "the label end is not one flat colour"
    _, tissue_before = halves(before, end)
    _, tissue_after = halves(after, end)
    assert float(np.abs(tissue_before.astype(np.int16) - tissue_after).mean()) < 4, "the tissue end changed"
    read_before, read_after = read_text(before), read_text(after)
    assert slides.MRN in read_before, read_before  # the planted PHI is readable in the input
    assert not [word for word in PRINTED if word in read_after], read_after


def assert_no_phi_bytes(path: Path, old_macro: list[bytes]) -> None:
    data = path.read_bytes()
    for phi in slides.PHI:
        for encoding in ("utf-8", "utf-16-le"):
            assert phi.encode(encoding) not in data, f"{phi!r} ({encoding}) left in {path.name}"
    for chunk in old_macro:  # pieces of the compressed pixels (the headers and tables are common to any JPEG)
        for at in range(len(chunk) // 4, len(chunk) - 64, max(64, len(chunk) // 8)):
            assert chunk[at:at + 64] not in data, f"bytes of the old macro left in {path.name}"


# -- finding the label end -----------------------------------------------------------


@pytest.mark.parametrize("end", ["left", "right", "top", "bottom"])
def test_the_printed_end_is_found(end):
    photo = slides.slide_photo(label_end=end)
    area = find_label(photo, "aperio")
    assert not isinstance(area, str), area
    assert area.side == end and 1 / 3 <= area.share < 0.45
    painted = paint(photo, area)
    assert is_blanked(painted) and not is_blanked(photo)
    assert_blanked(photo, painted, end)


def test_an_end_that_cannot_be_told_is_not_guessed():
    photo = slides.slide_photo(label_end="left")
    both = photo.copy()
    both[:, -300:] = np.fliplr(photo[:, :300])  # paper and print at both ends
    assert "cannot be told" in find_label(both)
    glass = np.full((300, 900, 3), 135, np.uint8)
    assert "no printed label" in find_label(glass)
    assert "not shaped like a slide" in find_label(photo[:, :400])
    # print that reaches past half the slide from the end a vendor never uses
    long_label = slides.slide_photo(label_end="right")
    long_label[:, 380:560] = long_label[:, 640:820]
    assert "cannot be told" in find_label(long_label, "hamamatsu")
    assert not isinstance(find_label(long_label), str)  # without a vendor's habit, 58% is a label


# -- TIFF slides and MRXS ---------------------------------------------------------------


@pytest.fixture(scope="module", params=["left", "right"])
def blanked(request, tmp_path_factory):
    """Every vendor with a macro, its label at one end, in one run."""
    end = request.param
    root = tmp_path_factory.mktemp(f"blank-{end}")
    inp, out = root / "in", root / "out"
    inp.mkdir()
    photo = slides.slide_photo(label_end=end)
    for name, write in TIFF_SLIDES.values():
        write(inp / name, photo)
    mrxs = mrxs_slides.write_mrxs(inp / "mrxs", stem="case", macro=photo)
    summary = run(inp, out, BLANK)
    return end, inp, out, mrxs, {r.id: r for r in summary.results}


def test_every_slide_is_done_with_its_macro_blanked(blanked):
    end, _, _, _, results = blanked
    assert {i: (r.status, r.reason) for i, r in results.items() if r.status != "done"} == {}
    for name, _ in TIFF_SLIDES.values():
        assert results[name].flags["wsi.macro"] == f"label area blanked ({end} 33%)"
    (mrxs,) = [r for r in results.values() if r.flags.get("wsi.vendor") == "mirax"]
    assert f"macro: label area blanked ({end} 33%)" in mrxs.flags["wsi.macro"]


@pytest.mark.parametrize("vendor", list(TIFF_SLIDES))
def test_tiff_macro_keeps_its_size_and_loses_its_label(blanked, vendor):
    end, inp, out, _, _ = blanked
    name, _ = TIFF_SLIDES[vendor]
    source, output = inp / name, out / name
    with openslide.OpenSlide(str(source)) as a, openslide.OpenSlide(str(output)) as b:
        assert b.properties["openslide.vendor"] == a.properties["openslide.vendor"]
        assert b.level_dimensions == a.level_dimensions
        assert "label" not in b.associated_images
        assert b.associated_images["macro"].size == a.associated_images["macro"].size
    assert_blanked(macro_of(source), macro_of(output), end)
    assert_no_phi_bytes(output, macro_bytes(source, vendor))
    with tifffile.TiffFile(source, is_ndpi=name.endswith(".ndpi")) as a, \
            tifffile.TiffFile(output, is_ndpi=name.endswith(".ndpi")) as b:
        level = 2 if vendor == "ventana" else (1 if vendor == "hamamatsu-first" else 0)
        assert [bytes(x) for x in _tiles(a, level)] == [bytes(x) for x in _tiles(b, level)]


def _tiles(tf, index: int) -> list[bytes]:
    page = tf.pages[index]
    fh = tf.filehandle
    out = []
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
        fh.seek(offset)
        out.append(fh.read(count))
    return out


def test_mrxs_macro_keeps_its_size_and_loses_its_label(blanked):
    end, _, out, source, _ = blanked
    (output,) = out.rglob("*.mrxs")
    with openslide.OpenSlide(str(source.mrxs)) as a, openslide.OpenSlide(str(output)) as b:
        assert b.properties["openslide.vendor"] == "mirax"
        assert b.level_dimensions == a.level_dimensions
        assert "label" not in b.associated_images
        assert b.associated_images["macro"].size == a.associated_images["macro"].size
        before = np.asarray(a.associated_images["macro"].convert("RGB"))
        after = np.asarray(b.associated_images["macro"].convert("RGB"))
    assert_blanked(before, after, end)
    old = source.associated["macro"]
    for path in (p for p in output.parent.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not [phi for phi in mrxs_slides.PHI if phi.encode() in data], path.name
        assert old[len(old) // 2:len(old) // 2 + 64] not in data, f"bytes of the old macro left in {path.name}"


def test_ome_macro_is_blanked(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    photo = slides.slide_photo(label_end="right")
    source = slides.write_ome(inp / "case.ome.tif", macro=photo)
    summary = run(inp, tmp_path / "out", BLANK)
    assert summary.exit_code == 0, summary.results[0].reason
    with tifffile.TiffFile(source) as a, tifffile.TiffFile(tmp_path / "out" / "case.ome.tif") as b:
        assert b.is_ome and len(a.pages) == 3 and len(b.pages) == 2  # the label, last, is gone; the macro stays
        assert_blanked(a.pages[1].asarray(), b.pages[1].asarray(), "right")


def test_a_macro_whose_label_end_cannot_be_told_is_removed(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    photo = slides.slide_photo(label_end="left")
    photo = np.ascontiguousarray(np.concatenate([photo[:, :450], np.fliplr(photo[:, :450])], axis=1))
    source = slides.write_svs(inp / "a.svs", macro=photo)
    mrxs_slides.write_mrxs(inp / "m", stem="case", macro=photo)
    summary = run(inp, tmp_path / "out", BLANK)
    results = {r.flags["wsi.vendor"]: r for r in summary.results}
    assert summary.exit_code == 0, [r.reason for r in summary.results]
    aperio = results["aperio"]
    assert aperio.flags["wsi.macro"].startswith("removed: print at both ends")
    assert aperio.flags["wsi.left_out"] == "1 label, 1 macro"
    with openslide.OpenSlide(str(tmp_path / "out" / "a.svs")) as slide:
        assert "macro" not in slide.associated_images
    assert_no_phi_bytes(tmp_path / "out" / "a.svs", macro_bytes(source, "aperio"))
    mirax = results["mirax"]
    assert "macro removed: print at both ends" in mirax.flags["wsi.macro"]
    (output,) = (tmp_path / "out").rglob("*.mrxs")
    with openslide.OpenSlide(str(output)) as slide:
        assert "macro" not in slide.associated_images


def test_verify_finds_a_macro_that_is_not_blanked(tmp_path, secret):
    inp = tmp_path / "in"
    inp.mkdir()
    source = slides.write_svs(inp / "a.svs", macro=slides.slide_photo(label_end="right"))
    recipe = tmp_path / "r.toml"
    recipe.write_text('[wsi]\nmacro = "blank-label"\n')
    context = RunContext(RunConfig(recipe, secret, inp, tmp_path / "out", plugins=("wsi",)))
    hook = context.pm.hook.medscrub_verify
    found = [f for fs in hook(output=source, original=None, format="wsi", context=context) for f in fs]
    assert any(f.kind == "macro image" and "not blanked" in f.line() for f in found)
    run(inp, tmp_path / "out", '[wsi]\nmacro = "blank-label"\n')
    (output,) = (tmp_path / "out").glob("*.svs")
    found = [f for fs in hook(output=output, original=source, format="wsi", context=context) for f in fs]
    assert found == []


def test_new_image_offsets_beyond_4_gib_take_the_files_width(tmp_path):
    """NDPI keeps the high word of a new strip offset after the IFD,
    BigTIFF writes a LONG8, classic TIFF refuses."""
    source = slides.write_ndpi(tmp_path / "a.ndpi")
    offset = 0x1_2345_6780
    with TiffStructure(source) as t:
        rw = Rewrite(t)
        ifd = t.ifds[2]
        rw.set(ifd, STRIP_OFFSETS, rw.offset_value(offset))
        block = dict(rw.compile().patches)[ifd.offset]
    (n,) = struct.unpack_from("<H", block)
    tags = [struct.unpack_from("<H", block, 2 + 12 * i)[0] for i in range(n)]
    i = tags.index(STRIP_OFFSETS)
    (low,) = struct.unpack_from("<I", block, 2 + 12 * i + 8)
    (high,) = struct.unpack_from("<I", block, 2 + 12 * n + 8 + 4 * i)
    assert high << 32 | low == offset
    big = slides.write_philips(tmp_path / "b.tiff")
    with TiffStructure(big) as t:
        assert Rewrite(t).offset_value(offset).type == 16
    classic = slides.write_generic(tmp_path / "c.tif")
    with TiffStructure(classic) as t, pytest.raises(BadInput, match="beyond 4 GiB"):
        Rewrite(t).offset_value(offset)


# -- DICOM WSI labels ---------------------------------------------------------------------


def test_dicom_label_replaced_by_a_pseudonym_label(tmp_path, secret):
    pytest.importorskip("medscrub_dicom")
    pydicom = pytest.importorskip("pydicom")
    from dciodvfy import DCIODVFY, errors

    inp = tmp_path / "in"
    slides.write_dicom_wsi(inp)
    (inp / "label.dcm").unlink()
    (inp / "overview.dcm").unlink()
    slides.write_dicom_wsi_label(inp / "label1.dcm")
    # two frames, RLE compressed: one native frame comes out
    rle = pydicom.dcmread(slides.write_dicom_wsi_label(inp / "label2.dcm", tiles=2))
    rle.compress(pydicom.uid.RLELossless)
    rle.save_as(inp / "label2.dcm")
    summary = run(inp, tmp_path / "out", '[wsi]\ndicom_label = "replace"\n\n[run]\ndeep_verify = true\n',
                  plugins=("wsi", "dicom"))
    assert {r.id: (r.status, r.reason) for r in summary.results if r.status != "done"} == {}
    context = RunContext(RunConfig(None, SECRET, inp, tmp_path / "out", plugins=("wsi",)))
    pseudonym = context.pseudonyms.pseudonym("slide", slides.BARCODE, prefix="S")
    volume = pydicom.dcmread(tmp_path / "out" / "volume.dcm")
    for name in ("label1.dcm", "label2.dcm"):
        before, path = pydicom.dcmread(inp / name), tmp_path / "out" / name
        after = pydicom.dcmread(path)
        result = next(r for r in summary.results if r.id == name)
        assert result.flags["wsi.dicom_label"] == "replaced by a pseudonym label"
        assert "burned_in_text" not in result.flags
        # a picture of the new label for the QA report; the old one (PHI) only for internal reports
        assert [p["title"].startswith("DICOM WSI label") for p in result.previews] == [True]
        assert "before" not in result.previews[0]
        assert (after.Rows, after.Columns, after.NumberOfFrames) == (240, 480, 1)
        assert (after.TotalPixelMatrixRows, after.TotalPixelMatrixColumns) == (240, 480)
        assert after.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing == [0.05, 0.05]
        assert after.PhotometricInterpretation == "RGB" and after.SamplesPerPixel == 3
        assert after.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert after.BurnedInAnnotation == "NO"
        assert not after.get("LabelText") and not after.get("BarcodeValue")
        assert "113101" in {c.CodeValue for c in after.DeidentificationMethodCodeSequence}
        # the slide's UIDs, mapped as for its other instances
        assert (after.StudyInstanceUID, after.SeriesInstanceUID) == (volume.StudyInstanceUID, volume.SeriesInstanceUID)
        assert after.StudyInstanceUID != before.StudyInstanceUID
        text = read_text(after.pixel_array)
        assert "DE-IDENTIFIED" in text and pseudonym in text.replace(" ", ""), text
        assert not [word for word in PRINTED if word in text]
        photo = before.pixel_array if before.NumberOfFrames == 1 else np.concatenate(list(before.pixel_array), axis=1)
        assert slides.MRN in read_text(photo)  # the input's label shows the PHI
        data = path.read_bytes()
        for phi in slides.PHI:
            assert phi.encode() not in data, phi
        if DCIODVFY is not None:
            assert errors(path) <= errors(inp / name), errors(path) - errors(inp / name)
    assert re.fullmatch(r"S[A-Z2-7]{12}", pseudonym)


def test_a_large_dicom_label_is_shrunk_with_its_pixel_spacing(tmp_path):
    pytest.importorskip("medscrub_dicom")
    pydicom = pytest.importorskip("pydicom")
    from dciodvfy import DCIODVFY, errors

    inp = tmp_path / "in"
    inp.mkdir()
    slides.write_dicom_wsi_label(inp / "label.dcm", size=(2600, 1300))
    summary = run(inp, tmp_path / "out", '[wsi]\ndicom_label = "replace"\n', plugins=("wsi", "dicom"))
    assert summary.exit_code == 0, summary.results[0].reason
    after = pydicom.dcmread(tmp_path / "out" / "label.dcm")
    assert (after.Rows, after.Columns, after.TotalPixelMatrixRows, after.TotalPixelMatrixColumns) == (1024, 2048) * 2
    spacing = after.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    # the imaged area stays: 1300 rows x 0.05 mm = 1024 rows x the new spacing
    assert abs(float(spacing[0]) * 1024 - 65.0) < 1e-4 and abs(float(spacing[1]) * 2048 - 130.0) < 1e-4
    assert (after.ImagedVolumeWidth, after.ImagedVolumeHeight) == (130.0, 65.0)
    if DCIODVFY is not None:
        assert errors(tmp_path / "out" / "label.dcm") <= errors(inp / "label.dcm")


def test_dicom_label_without_replace_is_left_out(tmp_path):
    pytest.importorskip("medscrub_dicom")
    inp = tmp_path / "in"
    inp.mkdir()
    slides.write_dicom_wsi_label(inp / "label.dcm")
    summary = run(inp, tmp_path / "out", "[wsi]\n", plugins=("wsi", "dicom"))
    assert summary.results[0].status == "quarantined"
