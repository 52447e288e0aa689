"""The defacer on a DICOM series: the ch2 head written as MR slices goes
through the DICOM plugin's volume hand-off and comes back defaced, slice by
slice, with the same face removed as from the NIfTI image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from deface_heads import face_box

from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.pseudonyms import Secret

pytest.importorskip("medscrub_dicom")
from dicom_builders import VOLUME_PATIENT, volume_series  # noqa: E402
from pydicom import dcmread  # noqa: E402

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def test_deface_a_dicom_series(tmp_path: Path, ch2):
    data, affine, brain = ch2
    stored = data.astype(np.int16)
    inputs = volume_series(tmp_path / "in" / "t1", stored, LPS_TO_RAS @ affine)
    config = RunConfig(None, Secret(b"deface-dicom-secret-0123456789", "test"), tmp_path / "in", tmp_path / "out",
                       cleaners=("deface",), plugins=("dicom", "deface"))
    summary = run_batch(config, workers=1)
    records = [json.loads(line) for line in (tmp_path / "out" / ".medscrub" / "manifest.jsonl").read_text().splitlines()]
    assert summary.exit_code == 0, records
    (record,) = records  # the series is one item
    assert len(record["output"]) == len(inputs) and record["actions"]["pixels"] == 1 and record["previews"]
    slices = sorted((dcmread(p) for p in (tmp_path / "out").rglob("*.dcm")),
                    key=lambda ds: float(ds.ImagePositionPatient[2]))
    out = np.stack([ds.pixel_array.T for ds in slices], axis=-1)
    changed = out != stored
    face = face_box(data.shape, affine) & (data > 30)
    assert changed[face].mean() > 0.6
    assert changed[brain].sum() <= 0.001 * brain.sum()  # the target: at most 0.1 % of the brain
    touched = [ds for ds in slices if ds.get("RecognizableVisualFeatures") == "NO"]
    assert touched and all(
        "113102" in {item.CodeValue for item in ds.DeidentificationMethodCodeSequence} for ds in touched)
    assert all(VOLUME_PATIENT.encode() not in p.read_bytes() for p in (tmp_path / "out").rglob("*.dcm"))


def test_images_of_other_modalities_pass_untouched(tmp_path: Path):
    """--deface asks for faces in MR and CT: a radiograph is written as the
    profile leaves it, not refused as 'no volume'."""
    from dicom_builders import ct_dataset

    folder = tmp_path / "in"
    folder.mkdir()
    ds = ct_dataset(Modality="CR", SOPClassUID="1.2.840.10008.5.1.4.1.1.1", Rows=8, Columns=8, SamplesPerPixel=1,
                    PhotometricInterpretation="MONOCHROME2", BitsAllocated=16, BitsStored=12, HighBit=11,
                    PixelRepresentation=0, PixelData=np.arange(64, dtype=np.uint16).tobytes())
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.save_as(folder / "chest.dcm", enforce_file_format=True)
    config = RunConfig(None, Secret(b"deface-dicom-secret-0123456789", "test"), folder, tmp_path / "out",
                       cleaners=("deface",), plugins=("dicom", "deface"))
    summary = run_batch(config, workers=1)
    assert summary.exit_code == 0, [r.reason for r in summary.results]
    assert not summary.results[0].actions.get("pixels")
    assert np.array_equal(dcmread(tmp_path / "out" / "chest.dcm").pixel_array, np.arange(64).reshape(8, 8))
