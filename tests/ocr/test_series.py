"""erase-text and a volume cleaner in one run: the DICOM plugin groups a
series into one item, and the text eraser cleans each of its images."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("medscrub_dicom")
from dicom_builders import lps_affine, volume_series  # noqa: E402
from pydicom import dcmread  # noqa: E402
from volume_cleaners import plugin as volume_plugin  # noqa: E402

from medscrub.context import RunConfig  # noqa: E402
from medscrub.pipeline import run_batch  # noqa: E402
from medscrub.pseudonyms import Secret  # noqa: E402
from medscrub_ocr.synthetic import banner  # noqa: E402


def test_a_grouped_series_is_cleaned_image_by_image(tmp_path, detector):
    slices = 3
    grey = [np.full((240, 320), 20, np.uint8) for _ in range(slices)]  # a plain background, text on one image
    grey[1] = banner(["JONES ALBERT", "ID 99812734"], 320, 240)[:, :, 0]
    stored = np.stack([g.T for g in grey], axis=-1).astype(np.uint8)  # (columns, rows, slices)
    paths = volume_series(tmp_path / "in", stored, lps_affine(np.eye(3), (0.5, 0.5, 1.0), (0.0, 0.0, 0.0)))
    for path in paths:  # flag them as an ultrasound device would
        ds = dcmread(path)
        ds.BurnedInAnnotation = "YES"
        ds.save_as(path)
    config = RunConfig(None, Secret(b"o" * 32, "t"), tmp_path / "in", tmp_path / "out",
                       cleaners=("erase-text", "test-identity"), extra_plugins=(volume_plugin,),
                       plugins=("dicom", "ocr"))
    summary = run_batch(config, workers=1)
    records = [json.loads(line) for line in (tmp_path / "out" / ".medscrub" / "manifest.jsonl").read_text().splitlines()]
    assert summary.exit_code == 0, records
    (record,) = records  # one item: the series
    assert len(record["output"]) == slices
    assert "image 2 of 3" in record["flags"]["text_boxes"]
    outputs = sorted((dcmread(tmp_path / "out" / name) for name in record["output"]),
                     key=lambda ds: float(ds.ImagePositionPatient[2]))
    assert all(ds.BurnedInAnnotation == "NO" for ds in outputs)
    changed = [not np.array_equal(ds.pixel_array, g) for ds, g in zip(outputs, grey, strict=True)]
    assert changed == [False, True, False], record["flags"]  # the banner's image only
