"""Real ultrasound files with burned-in text, through the whole pipeline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut

from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.pseudonyms import Secret

FILES = (
    "US1_UNCR.dcm",  # RGB, explicit little endian
    "US1_J2KR.dcm",  # YBR_RCT, JPEG 2000 lossless
    "gdcm-US-ALOKA-16.dcm",  # 16-bit palette, implicit VR
    "OBXXXX1A_expb_2frame.dcm",  # palette, big endian, two frames
    "OBXXXX1A_rle.dcm",  # palette, RLE
    "JPGLosslessP14SV1_1s_1f_8b.dcm",  # MONOCHROME2, JPEG lossless; says BurnedInAnnotation NO and shows text
    "examples_ybr_color.dcm",  # YBR_FULL_422, JPEG baseline, 30 frames
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
)
# color3d_jpeg_baseline.dcm (120 frames, the same device and coding as
# examples_ybr_color) runs in bench/bench_ocr.py: it alone would take the
# suite's time budget.
# Words tesseract reads on each input (checked: it misses the white-on-blue
# banners, which the detector and the region rules take): none may be read
# afterwards.  Letters and digits only, upper case.
WORDS = {
    "US1_UNCR.dcm": ["MEDCTR", "MSCSKEL", "LYMPHNODE"],
    "US1_J2KR.dcm": ["MEDCTR", "MSCSKEL", "LYMPHNODE"],
    "gdcm-US-ALOKA-16.dcm": ["ULTRASOUND", "912350"],
    "OBXXXX1A_expb_2frame.dcm": ["GENOB", "CISTMAG"],
    "OBXXXX1A_rle.dcm": ["GENOB", "CISTMAG"],
    "examples_palette.dcm": ["GENOB", "CISTMAG"],
    "JPGLosslessP14SV1_1s_1f_8b.dcm": ["ADULT"],
}


def picture(ds: pydicom.Dataset, frame: int = 0) -> np.ndarray:
    array = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        array = array[frame]
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        array = apply_color_lut(array, ds)
    if array.dtype != np.uint8:
        array = (array >> 8).astype(np.uint8) if array.max() > 255 else array.astype(np.uint8)
    return array if array.ndim == 3 else np.repeat(array[:, :, None], 3, axis=2)


def normalise(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    src = tmp_path_factory.mktemp("in")
    for name in FILES:
        path = get_testdata_file(name)
        if path is None:
            pytest.skip(f"{name} is not installed (pydicom-data)")
        shutil.copy(path, src / name)
    out = tmp_path_factory.mktemp("out")
    summary = run_batch(RunConfig(None, Secret(b"s" * 32), src, out, cleaners=("erase-text",),
                                  plugins=("ocr", "dicom")), workers=2)
    return src, out, {r.id: r for r in summary.results}


@pytest.mark.parametrize("name", FILES)
def test_output_is_valid_and_marked(run, name):
    src, out, results = run
    result = results[name]
    assert result.status == "done", result.reason
    assert result.actions.get("pixels") == 1
    assert result.previews and result.previews[0]["after"]
    first, boxes_of_first = result.flags["text_boxes"].split(";")[0].split(":")
    assert first.split("-")[0] == "0"
    ds = pydicom.dcmread(out / name)
    original = pydicom.dcmread(src / name)
    assert ds.BurnedInAnnotation == "NO"
    assert "113101" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
    assert ds.pixel_array.shape == original.pixel_array.shape
    assert (ds.Rows, ds.Columns) == (original.Rows, original.Columns)
    if int(original.SamplesPerPixel) == 3:
        assert ds.PhotometricInterpretation == "RGB" and ds.PlanarConfiguration == 0
    else:
        assert ds.PhotometricInterpretation == original.PhotometricInterpretation
    # once lossy, always flagged
    assert ds.get("LossyImageCompression") == original.get("LossyImageCompression")
    # outside the boxes nothing moved (lossy inputs are compared as decoded)
    boxes = [tuple(int(v) for v in b.split(",")) for b in boxes_of_first.split()]
    keep = np.ones((ds.Rows, ds.Columns), bool)
    for x0, y0, x1, y1 in boxes:
        keep[y0:y1, x0:x1] = False
    assert np.array_equal(picture(ds)[keep], picture(original)[keep])


@pytest.mark.parametrize("name", sorted(WORDS))
def test_text_is_erased(run, name, tesseract):
    src, out, _ = run
    before = normalise(tesseract.read(picture(pydicom.dcmread(src / name))))
    after = normalise(tesseract.read(picture(pydicom.dcmread(out / name))))
    for word in WORDS[name]:
        assert word in before, f"tesseract no longer reads {word} on the input; pick another word"
        assert word not in after


def test_manifest_records_boxes_and_previews(run):
    _, out, _ = run
    records = [json.loads(line) for line in (out / ".medscrub" / "manifest.jsonl").read_text().splitlines()]
    done = [r for r in records if r.get("status") == "done"]
    assert len(done) == len(FILES)
    for record in done:
        assert record["flags"]["text_boxes"]
        for preview in record["previews"]:
            assert (out / ".medscrub" / preview["after"]).read_bytes().startswith(b"\x89PNG")
            assert "before" not in preview  # the original shows PHI: internal reports only


def test_cine_overlay_found_once(run):
    _, _, results = run
    flags = results["examples_ybr_color.dcm"].flags
    assert "in 30 of 30 frames" in flags["erase_text"]
    assert "1 frames searched in full" in flags["erase_text"]
