"""Validity: de-identified outputs pass dciodvfy (dicom3tools) with no error
that their input did not already have.

A representative set of the shipped test files (CT, MR, US, CR, RT plan,
dose and structure set, SR, SEG, enhanced MR and CT multi-frame, ECG
waveform, big endian, implicit VR, JPEG, JPEG 2000, JPEG-LS, RLE, a bare
dataset without file meta, non-Latin character sets) is run unchanged
through medscrub with the default recipe; dciodvfy checks input and output.
Error lines are compared with their values dropped: a UID or a date that the
profile replaced does not make the same error a new one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dciodvfy import DCIODVFY, MISSING, errors, normalise

pytestmark = pytest.mark.skipif(DCIODVFY is None, reason=MISSING)

# name in pydicom's test data -> what it stands for
REPRESENTATIVE = {
    "CT_small.dcm": "CT",
    "693_UNCR.dcm": "CT 512x512",
    "MR_small.dcm": "MR",
    "MR-SIEMENS-DICOM-WithOverlays.dcm": "MR with overlays and Siemens private data",
    "MR_small_bigendian.dcm": "MR, explicit VR big endian",
    "MR_small_implicit.dcm": "MR, implicit VR",
    "US1_J2KR.dcm": "US, JPEG 2000",
    "OBXXXX1A_rle.dcm": "US, RLE",
    "color3d_jpeg_baseline.dcm": "US multi-frame, JPEG baseline",
    "JPGLosslessP14SV1_1s_1f_8b.dcm": "US, JPEG lossless",
    "RG1_UNCR.dcm": "CR",
    "rtplan.dcm": "RT plan",
    "rtdose.dcm": "RT dose",
    "rtstruct.dcm": "RT structure set, no file meta",
    "test-SR.dcm": "comprehensive SR",
    "reportsi.dcm": "basic text SR",
    "liver.dcm": "SEG",
    "emri_small.dcm": "enhanced MR multi-frame",
    "emri_small_jpeg_ls_lossless.dcm": "enhanced MR, JPEG-LS",
    "eCT_Supplemental.dcm": "enhanced CT",
    "waveform_ecg.dcm": "12-lead ECG",
    "chrH31.dcm": "Japanese, ISO 2022",
    "chrX1.dcm": "UTF-8",
    "chrRuss.dcm": "Cyrillic",
}

def test_normalise_drops_values_but_keeps_the_attribute():
    a = "Error - Value invalid for this VR - (0x0020,0x000d) UI Study Instance UID  UI [1] = <05fa> - Character invalid for this VR = 'f' (0x66)"
    b = "Error - Value invalid for this VR - (0x0020,0x000d) UI Study Instance UID  UI [1] = <9a1c> - Character invalid for this VR = 'c' (0x63)"
    assert normalise(a) == normalise(b)
    assert normalise("Error - Missing attribute Type 2 Required Element=<PatientID> Module=<Patient>") != normalise(
        "Error - Missing attribute Type 2 Required Element=<PatientName> Module=<Patient>"
    )
    assert normalise("Error - Illegal root for UID - \"9.8.7.6\" in (0x0008,0x1155) Referenced SOP Instance UID") == normalise(
        "Error - Illegal root for UID - \"2.25.1234\" in (0x0008,0x1155) Referenced SOP Instance UID"
    )


@pytest.fixture(scope="module")
def deidentified(tmp_path_factory, dicom_corpus, medscrub_run) -> tuple[Path, Path, dict]:
    by_name = {item.path.name: item.path for item in dicom_corpus}
    base = tmp_path_factory.mktemp("validity")
    inputs = base / "in"
    inputs.mkdir()
    for name in REPRESENTATIVE:
        shutil.copyfile(by_name[name], inputs / name)
    result = medscrub_run(inputs, base / "out")
    return inputs, base / "out", result.records


@pytest.mark.parametrize("name", sorted(REPRESENTATIVE))
def test_no_new_dciodvfy_errors(name, deidentified):
    inputs, outputs, records = deidentified
    record = records[name]
    assert record["status"] == "done", record["reason"]
    before = errors(inputs / name)
    after = errors(outputs / record["output"][0])
    new = sorted(after - before)
    assert not new, f"{REPRESENTATIVE[name]}: new errors:\n" + "\n".join(new)
