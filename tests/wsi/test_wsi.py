"""medscrub-wsi end to end: generated slides in, de-identified slides out.

Each slide carries PHI in its label and macro (as rendered text) and in every
metadata place its vendor uses; each output must hold none of those bytes,
open in openslide as the same vendor with the same levels, dimensions and
MPP, keep its level-0 tiles byte for byte, and show no label or macro.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import slides  # noqa: E402

from medscrub.context import RunConfig, RunContext  # noqa: E402
from medscrub.model import MedscrubError  # noqa: E402
from medscrub.pipeline import run_batch  # noqa: E402
from medscrub.pseudonyms import Secret  # noqa: E402

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("imagecodecs")
try:
    import openslide
except Exception:  # pragma: no cover - openslide-bin missing
    openslide = None

SECRET = Secret(b"s" * 32)
needs_openslide = pytest.mark.skipif(openslide is None, reason="openslide-python with openslide-bin is not installed")


def run(inp: Path, out: Path, recipe: str | None = None):
    recipe_path = None
    if recipe is not None:
        recipe_path = inp.parent / "recipe.toml"
        recipe_path.write_text(recipe)
    return run_batch(RunConfig(recipe_path, SECRET, inp, out, plugins=("wsi",)))


def outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and ".medscrub" not in p.parts)


def image_data(path: Path, ifds: list[int] | None = None) -> list[bytes]:
    """The raw (compressed) strips and tiles of every page, or of some."""
    chunks = []
    with tifffile.TiffFile(path, is_ndpi=path.suffix == ".ndpi") as tf, open(path, "rb") as f:
        for i, page in enumerate(tf.pages):
            if ifds is not None and i not in ifds:
                continue
            for off, n in zip(page.dataoffsets, page.databytecounts, strict=True):
                f.seek(off)
                chunks.append(f.read(n))
    return chunks


def level0_tiles(path: Path) -> list[bytes]:
    return image_data(path, [0]) if path.suffix != ".bif" else image_data(path, [2])


def assert_clean(path: Path, removed_images: list[bytes]) -> None:
    data = path.read_bytes()
    for phi in slides.PHI:
        for enc in ("utf-8", "utf-16-le"):
            assert phi.encode(enc) not in data, f"{phi!r} ({enc}) left in {path.name}"
    assert "kowalczyk" not in path.name.lower()
    for chunk in removed_images:
        probe = chunk[len(chunk) // 2:len(chunk) // 2 + 64]
        assert len(probe) < 32 or probe not in data, f"bytes of a removed image left in {path.name}"


SLIDES = {
    "aperio": (slides.write_svs, "Kowalczyk_MRN44172209.svs", [3, 4]),
    "hamamatsu": (slides.write_ndpi, "case.ndpi", [2]),
    "philips": (slides.write_philips, "case.tiff", [2, 3]),
    "ventana": (slides.write_bif, "case.bif", [0]),
    "generic-tiff": (slides.write_generic, "case.tif", [2]),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Every vendor in one batch, with the default recipe."""
    root = tmp_path_factory.mktemp("wsi")
    inp, out = root / "in", root / "out"
    inp.mkdir()
    for vendor, (write, name, _) in SLIDES.items():
        (inp / vendor).mkdir()
        write(inp / vendor / name)
    (inp / "ome").mkdir()
    slides.write_ome(inp / "ome" / "case.ome.tif")
    summary = run(inp, out)
    return inp, out, summary


def test_every_slide_is_done(batch):
    _, _, summary = batch
    assert [(r.id, r.status, r.reason) for r in summary.results if r.status != "done"] == []
    assert summary.count("done") == len(SLIDES) + 1


@pytest.mark.parametrize("vendor", list(SLIDES))
def test_no_phi_bytes_and_images_left_out(batch, vendor):
    inp, out, _ = batch
    write, name, removed = SLIDES[vendor]
    (output,) = outputs(out / vendor)
    assert_clean(output, image_data(inp / vendor / name, removed))


@needs_openslide
@pytest.mark.parametrize("vendor", list(SLIDES))
def test_openslide_reads_the_same_slide(batch, vendor):
    inp, out, _ = batch
    _, name, _ = SLIDES[vendor]
    (output,) = outputs(out / vendor)
    before, after = openslide.OpenSlide(str(inp / vendor / name)), openslide.OpenSlide(str(output))
    assert after.properties["openslide.vendor"] == before.properties["openslide.vendor"] == vendor
    assert after.level_dimensions == before.level_dimensions
    assert after.properties.get("openslide.mpp-x") == before.properties.get("openslide.mpp-x")
    assert after.properties.get("openslide.objective-power") == before.properties.get("openslide.objective-power")
    assert not {"label", "macro"} & set(after.associated_images)
    if "thumbnail" in before.associated_images:
        assert "thumbnail" in after.associated_images
    region = (0, 0), 0, before.level_dimensions[0]
    assert np.array_equal(np.asarray(before.read_region(*region)), np.asarray(after.read_region(*region)))
    for key, value in after.properties.items():
        assert not any(phi in value for phi in slides.PHI), key


@pytest.mark.parametrize("vendor", list(SLIDES))
def test_level0_tiles_are_copied_byte_for_byte(batch, vendor):
    inp, out, _ = batch
    _, name, _ = SLIDES[vendor]
    (output,) = outputs(out / vendor)
    assert level0_tiles(output) == level0_tiles(inp / vendor / name)


def test_ome_tiff(batch):
    inp, out, _ = batch
    (output,) = outputs(out / "ome")
    assert output.name.endswith(".ome.tif")
    assert_clean(output, image_data(inp / "ome" / "case.ome.tif", [1, 2]))
    with tifffile.TiffFile(inp / "ome" / "case.ome.tif") as a, tifffile.TiffFile(output) as b:
        assert b.is_ome
        assert len(b.series) == 1 and len(b.series[0].levels) == len(a.series[0].levels) == 2
        assert [lvl.shape for lvl in b.series[0].levels] == [lvl.shape for lvl in a.series[0].levels]
        assert np.array_equal(a.series[0].levels[1].asarray(), b.series[0].levels[1].asarray())
        assert "macro" not in b.ome_metadata and "label" not in b.ome_metadata


def test_output_is_smaller_and_streamed(batch):
    inp, out, _ = batch
    source = inp / "aperio" / SLIDES["aperio"][1]
    (output,) = outputs(out / "aperio")
    # label and macro were at the end: cut off, not kept as zeros
    assert output.stat().st_size < source.stat().st_size


@pytest.mark.parametrize("macro_last", [True, False])
def test_ndpi_macro_first_or_last(tmp_path, macro_last):
    inp = tmp_path / "in"
    inp.mkdir()
    source = slides.write_ndpi(inp / "a.ndpi", macro_last=macro_last)
    summary = run(inp, tmp_path / "out")
    assert summary.exit_code == 0, summary.results[0].reason
    (output,) = outputs(tmp_path / "out")
    assert_clean(output, image_data(source, [2 if macro_last else 0]))
    data = output.read_bytes()
    first = struct.unpack("<Q", data[4:12])[0]
    assert data[first:first + 2] != b"\0\0"  # the 64-bit first-IFD pointer is right
    with tifffile.TiffFile(output, is_ndpi=True) as tf:
        assert len(tf.pages) == 2
    if openslide is not None:
        slide = openslide.OpenSlide(str(output))
        assert slide.properties["openslide.vendor"] == "hamamatsu" and "macro" not in slide.associated_images


def test_gt450_label_and_macro_without_descriptions(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    source = slides.write_svs(inp / "gt450.svs", gt450=True)
    summary = run(inp, tmp_path / "out")
    assert summary.exit_code == 0, summary.results[0].reason
    (output,) = outputs(tmp_path / "out")
    assert_clean(output, image_data(source, [3, 4]))
    with tifffile.TiffFile(output) as tf:
        assert len(tf.pages) == 3


def test_date_shift_and_rules(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    slides.write_svs(inp / "a.svs")
    recipe = """
[dates]
policy = "shift"

[[rules]]
match = "aperio:Parmset"
action = "replace"
value = "site"
format = "wsi"
"""
    summary = run(inp, tmp_path / "out", recipe)
    assert summary.exit_code == 0, summary.results[0].reason
    (output,) = outputs(tmp_path / "out")
    with tifffile.TiffFile(output) as tf:
        description = tf.pages[0].description
        assert "Parmset = site|" in description
        date = description.split("Date = ")[1].split("|")[0]
        assert date and date != slides.DATE_US and len(date) == len(slides.DATE_US)
        assert "Time = 10:22:33" in description  # times of day stay with shift
        shifted = tf.pages[0].tags["DateTime"].value
        assert shifted != slides.DATE_TIFF and shifted.endswith("10:22:33")
    assert_clean(output, [])


def test_label_replaced_by_pseudonym_label(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    source = slides.write_svs(inp / "a.svs")
    summary = run(inp, tmp_path / "out", '[wsi]\nlabel = "replace"\n')
    assert summary.exit_code == 0, summary.results[0].reason
    (output,) = outputs(tmp_path / "out")
    assert_clean(output, image_data(source, [3, 4]))
    with tifffile.TiffFile(output) as tf:
        label = tf.pages[3]
        assert label.shape[:2] == (120, 200) and label.compression == 7
        pixels = label.asarray()
        assert pixels.min() < 100 and pixels.max() > 200  # black text on white
    if openslide is not None:
        slide = openslide.OpenSlide(str(output))
        assert slide.properties["openslide.vendor"] == "aperio"
        assert set(slide.associated_images) == {"thumbnail", "label"}
        assert slide.associated_images["label"].size == (200, 120)


def test_in_place_is_explicit(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    source = slides.write_svs(inp / "a.svs")
    untouched = source.read_bytes()
    run(inp, tmp_path / "out1")
    assert source.read_bytes() == untouched  # the default never edits the input
    summary = run(inp, tmp_path / "out2", "[wsi]\nin_place = true\n")
    assert summary.exit_code == 0, summary.results[0].reason
    assert outputs(tmp_path / "out2") == []
    assert_clean(source, [])
    assert source.read_bytes()[:4] == b"II*\0"
    if openslide is not None:
        slide = openslide.OpenSlide(str(source))
        assert slide.properties["openslide.vendor"] == "aperio" and "label" not in slide.associated_images


def test_verify_hook(batch, secret):
    inp, out, _ = batch
    context = RunContext(RunConfig(None, secret, inp, out, plugins=("wsi",)))
    (output,) = outputs(out / "aperio")
    source = inp / "aperio" / SLIDES["aperio"][1]
    hook = context.pm.hook.medscrub_verify
    assert [f for fs in hook(output=output, original=source, format="wsi", context=context) for f in fs] == []
    found = [f for fs in hook(output=source, original=None, format="wsi", context=context) for f in fs]
    kinds = {f.kind for f in found}
    assert {"label image", "macro image", "identifying field"} <= kinds
    assert all(slides.NAME not in f.line() for f in found)


def test_big_endian_classic_tiff(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    source = slides.write_generic(inp / "be.tif", byteorder=">")
    assert source.read_bytes()[:2] == b"MM"
    summary = run(inp, tmp_path / "out")
    assert summary.exit_code == 0, summary.results[0].reason
    (output,) = outputs(tmp_path / "out")
    assert_clean(output, image_data(source, [2]))
    assert level0_tiles(output) == level0_tiles(source)
    with tifffile.TiffFile(output) as tf:
        assert tf.byteorder == ">" and len(tf.pages) == 2


def test_dicom_wsi_label_and_overview_left_out(tmp_path):
    pytest.importorskip("medscrub_dicom")
    slides.write_dicom_wsi(tmp_path / "in")
    summary = run_batch(RunConfig(None, SECRET, tmp_path / "in", tmp_path / "out", plugins=("wsi", "dicom")))
    status = {r.id: (r.status, r.reason or "") for r in summary.results}
    assert status["volume.dcm"][0] == "done"
    assert status["label.dcm"][0] == "quarantined" and "label" in status["label.dcm"][1]
    assert status["overview.dcm"][0] == "quarantined" and "overview" in status["overview.dcm"][1]
    kept = run_batch(RunConfig(_recipe(tmp_path, '[wsi]\ndicom_overview = "keep"\n'), SECRET, tmp_path / "in",
                               tmp_path / "out2", plugins=("wsi", "dicom")))
    assert {r.id: r.status for r in kept.results}["overview.dcm"] == "done"


def _recipe(folder: Path, text: str) -> Path:
    path = folder / "recipe.toml"
    path.write_text(text)
    return path


def test_deep_verify_runs_the_slide_verifier_in_the_run(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    slides.write_svs(inp / "a.svs")
    slides.write_bif(inp / "b.bif")
    slides.write_ndpi(inp / "c.ndpi")
    summary = run(inp, tmp_path / "out", "[run]\ndeep_verify = true\n")
    assert [(r.id, r.status, r.reason) for r in summary.results if r.status != "done"] == []


def test_bad_rule_selector_stops_the_run(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    slides.write_generic(inp / "a.tif")
    with pytest.raises(MedscrubError, match="wsi selector"):
        run(inp, tmp_path / "out", '[[rules]]\nmatch = "leica:Title"\naction = "keep"\nformat = "wsi"\n')


# -- bad input: a clear reason, no output, the batch goes on ----------------------------


def _corrupt(tmp: Path, kind: str) -> Path:
    good = slides.write_generic(tmp / f"{kind}.tif")
    data = bytearray(good.read_bytes())
    first = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[first:first + 2])[0]
    next_pos = first + 2 + 12 * n
    if kind == "truncated":
        data = data[: len(data) // 3]
    elif kind == "loop":
        struct.pack_into("<I", data, next_pos, first)
    elif kind == "past-end":
        struct.pack_into("<I", data, 4, len(data) + 1000)
    elif kind == "tile-past-end":
        for i in range(n):
            tag, typ, count, value = struct.unpack_from("<HHII", data, first + 2 + 12 * i)
            if tag == 324:
                struct.pack_into("<I", data, value, len(data) + 10)
    elif kind == "picture":  # one untiled image: a plain picture, not a slide
        plain = tmp / f"{kind}.tif"
        tifffile.imwrite(plain, np.zeros((32, 32), np.uint8), metadata=None)
        return plain
    good.write_bytes(bytes(data))
    return good


def test_bad_inputs_fail_with_reasons_and_the_batch_goes_on(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    expected = {
        "truncated": "truncated",
        "loop": "IFD loop",
        "past-end": "past the end",
        "tile-past-end": "past the end",
    }
    for kind in expected:
        _corrupt(inp, kind)
    slides.write_svs(inp / "z-good.svs")
    _corrupt(inp, "picture")
    summary = run(inp, tmp_path / "out")
    by_id = {r.id: r for r in summary.results}
    assert by_id["picture.tif"].status == "unsupported"  # left to the image plugin
    for kind, words in expected.items():
        result = by_id[f"{kind}.tif"]
        assert result.status == "failed" and result.output == []
        assert words in result.reason and "\n" not in result.reason, result.reason
        assert "internal error" not in result.reason
    assert by_id["z-good.svs"].status == "done"
    assert len(outputs(tmp_path / "out")) == 1


def test_plain_copy_of_tiles_keeps_tiff_readers_happy(batch):
    inp, out, _ = batch
    for vendor in SLIDES:
        (output,) = outputs(out / vendor)
        with tifffile.TiffFile(output, is_ndpi=output.suffix == ".ndpi") as tf:
            for page in tf.pages:
                if page.shape[:2] != (1, 1):
                    page.asarray()  # every kept image decodes

