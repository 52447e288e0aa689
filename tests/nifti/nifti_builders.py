"""Real NIfTI, Analyze and BIDS files with PHI planted in every place it hides.

Every planted value is listed in ``PLANTED`` so a test can assert that none
of them reaches any output, in bytes, in decompressed bytes or in names.
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.nifti1 import Nifti1Extension

PATIENT_NAME = "Doe^Johnathan"
PATIENT_ID = "MRN7731942"
BIRTH_DATE = "1961-07-14"
ACQ_DATE = "2021-03-04"
INSTITUTION = "Mercy General Hospital"
ADDRESS = "12 Harbour Road Springfield"
STATION = "MRSTATION42"
SERIAL = "SN99887766"
OPERATOR = "Smithers^Waylon"
DEPARTMENT = "Neuroradiology Wing B"
COMMENT = "Patient Johnathan Doe was anxious"
SECOND_NAME = "Roe^Richarda"
SECOND_ID = "MRN5550123"
SECOND_DATE = "2020-11-27"

PLANTED = [
    "Johnathan", "Doe^Johnathan", PATIENT_ID, BIRTH_DATE, ACQ_DATE, INSTITUTION, ADDRESS, STATION, SERIAL,
    "Smithers", "Waylon", DEPARTMENT, COMMENT, "Richarda", SECOND_ID, SECOND_DATE, "Neuroradiology",
    "anxious", "Harbour Road",
]

AFFINE = np.array([
    [-0.9, 0.05, 0.01, 90.5],
    [0.04, 1.1, -0.1, -126.25],
    [0.0, 0.12, 1.2, -72.0],
    [0.0, 0.0, 0.0, 1.0],
])


def dicom_bytes(name: str = PATIENT_NAME, pid: str = PATIENT_ID) -> bytes:
    """A DICOM data set fragment, explicit VR little endian, as converters embed it."""

    def element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
        if len(value) % 2:
            value += b" "
        return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value

    return b"".join([
        element(0x0008, 0x0020, b"DA", ACQ_DATE.replace("-", "").encode()),
        element(0x0008, 0x0080, b"LO", INSTITUTION.encode()),
        element(0x0010, 0x0010, b"PN", name.encode()),
        element(0x0010, 0x0020, b"LO", pid.encode()),
        element(0x0010, 0x0030, b"DA", BIRTH_DATE.replace("-", "").encode()),
    ])


def sidecar_json(pid: str = PATIENT_ID, name: str = PATIENT_NAME, date: str = ACQ_DATE) -> dict:
    return {
        "Modality": "MR",
        "MagneticFieldStrength": 3,
        "Manufacturer": "Siemens",
        "InstitutionName": INSTITUTION,
        "InstitutionAddress": ADDRESS,
        "InstitutionalDepartmentName": DEPARTMENT,
        "DeviceSerialNumber": SERIAL,
        "StationName": STATION,
        "OperatorsName": OPERATOR,
        "PatientName": name,
        "PatientID": pid,
        "PatientBirthDate": BIRTH_DATE,
        "PatientSex": "M",
        "PatientPosition": "HFS",
        "ImageComments": COMMENT,
        "SeriesDescription": "T1_MPRAGE",
        "ProtocolName": "t1_mprage_" + name.split("^")[1],
        "AcquisitionDateTime": f"{date}T10:11:12.500000",
        "AcquisitionTime": "10:11:12.500000",
        "StudyInstanceUID": "1.2.826.0.1.3680043.2.1125.1.12345678901234567890",
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.4",
        "EchoTime": 0.00246,
        "RepetitionTime": 2.3,
    }


def plant_header(img, *, extensions: bool = True) -> None:
    """PHI in the text fields and, for NIfTI-1/2, in three kinds of extension."""
    hdr = img.header
    hdr["descrip"] = f"Johnathan Doe {PATIENT_ID} {ACQ_DATE}".encode()
    hdr["aux_file"] = b"Johnathan_aux"
    if "intent_name" in hdr:
        hdr["intent_name"] = b"DoeJohnathan"
    if "db_name" in hdr:
        hdr["db_name"] = PATIENT_ID.encode()
    if extensions and hasattr(hdr, "extensions"):
        hdr.extensions.append(Nifti1Extension(44, json.dumps(sidecar_json()).encode()))
        hdr.extensions.append(Nifti1Extension(2, dicom_bytes()))
        hdr.extensions.append(Nifti1Extension(6, f"{COMMENT} at {INSTITUTION}".encode()))


def voxels(shape=(12, 14, 10), dtype=np.int16) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 2000, size=shape).astype(dtype)


def nifti1(path: Path, *, dtype=np.int16, shape=(12, 14, 10), slope: float | None = None) -> Path:
    img = nib.Nifti1Image(voxels(shape, dtype), AFFINE)
    img.header.set_qform(AFFINE, code=1)
    img.header.set_sform(AFFINE, code=2)
    if slope is not None:
        img.header.set_slope_inter(slope, 3.0)
    plant_header(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def nifti2(path: Path) -> Path:
    img = nib.Nifti2Image(voxels(dtype=np.float32), AFFINE)
    img.header.set_sform(AFFINE, code=1)
    plant_header(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def nifti_pair(path: Path) -> Path:
    """A NIfTI-1 pair (.hdr with magic ni1 + .img)."""
    img = nib.Nifti1Pair(voxels(), AFFINE)
    plant_header(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def analyze_pair(path: Path) -> Path:
    """An Analyze 7.5 pair with PHI in its history fields."""
    img = nib.AnalyzeImage(voxels(dtype=np.uint8), np.diag([2.0, 2.0, 2.5, 1.0]))
    hdr = img.header
    hdr["descrip"] = f"{PATIENT_NAME} {ACQ_DATE}".encode()
    hdr["aux_file"] = b"Johnathan"
    hdr["db_name"] = PATIENT_ID.encode()
    hdr["patient_id"] = PATIENT_ID.encode()
    hdr["exp_date"] = ACQ_DATE.encode()
    hdr["generated"] = b"Johnathan"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")
    return path


def write_tsv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(r) + "\n" for r in rows))
    return path


def bids_dataset(root: Path) -> Path:
    """Two subjects (one with two sessions), anat and func, PHI everywhere."""
    write_json(root / "dataset_description.json", {
        "Name": "medscrub test dataset", "BIDSVersion": "1.9.0", "DatasetType": "raw", "Authors": ["A. Researcher"],
    })
    (root / "README").write_text(f"Scans of {PATIENT_NAME.replace('^', ' ')} ({PATIENT_ID}) at {INSTITUTION}.\n")
    (root / "CHANGES").write_text(f"1.0.0 {ACQ_DATE}\n  - first release, patient {SECOND_ID}\n")
    write_tsv(root / "participants.tsv", [
        ["participant_id", "age", "sex", "patient_name", "birth_date", "group"],
        ["sub-01", "93", "M", "Johnathan Doe", BIRTH_DATE, "control"],
        ["sub-02", "45", "F", "Richarda Roe", "1978-01-02", "patient"],
    ])
    write_json(root / "participants.json", {
        "age": {"Description": "age in years"}, "patient_name": {"Description": "full name"},
        "group": {"Levels": {"control": "healthy", "patient": "patient"}},
    })
    subjects = {
        "01": (PATIENT_ID, PATIENT_NAME, {"ses-01": ACQ_DATE, "ses-02": "2021-09-30"}),
        "02": (SECOND_ID, SECOND_NAME, {"ses-01": SECOND_DATE}),
    }
    for label, (pid, name, sessions) in subjects.items():
        sub = root / f"sub-{label}"
        write_tsv(sub / f"sub-{label}_sessions.tsv", [["session_id", "acq_time", "note"]] + [
            [ses, f"{date}T09:00:00", f"seen by {OPERATOR}"] for ses, date in sessions.items()
        ])
        for ses, date in sessions.items():
            folder = sub / ses
            base = f"sub-{label}_{ses}"
            nifti1(folder / "anat" / f"{base}_T1w.nii.gz")
            write_json(folder / "anat" / f"{base}_T1w.json", sidecar_json(pid, name, date))
            nifti1(folder / "func" / f"{base}_task-rest_bold.nii.gz", dtype=np.float32, shape=(8, 8, 6, 3))
            bold = sidecar_json(pid, name, date)
            bold.update({"TaskName": "rest", "SliceTiming": [0.0, 0.5, 1.0, 0.25, 0.75, 1.25]})
            write_json(folder / "func" / f"{base}_task-rest_bold.json", bold)
            write_json(folder / "fmap" / f"{base}_epi.json", {
                **sidecar_json(pid, name, date),
                "IntendedFor": [f"bids::sub-{label}/{ses}/func/{base}_task-rest_bold.nii.gz"],
            })
            nifti1(folder / "fmap" / f"{base}_epi.nii.gz")
            write_tsv(folder / f"{base}_scans.tsv", [
                ["filename", "acq_time"],
                [f"anat/{base}_T1w.nii.gz", f"{date}T10:11:12"],
                [f"func/{base}_task-rest_bold.nii.gz", f"{date}T10:31:40"],
            ])
    return root


def output_texts(root: Path) -> list[tuple[str, bytes]]:
    """(relative path, content) of every output, gzip members decompressed."""
    out = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or ".medscrub" in path.parts:
            continue
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        out.append((path.relative_to(root).as_posix(), raw))
    return out


def leaks(root: Path, values=PLANTED) -> list[str]:
    """Every planted value found in an output's content or name (case-insensitive)."""
    found = []
    for rel, raw in output_texts(root):
        lowered = raw.lower()
        for value in values:
            for encoding in ("utf-8", "utf-16-le"):
                if value.lower().encode(encoding) in lowered:
                    found.append(f"{rel}: {value} ({encoding})")
            if value.lower() in rel.lower():
                found.append(f"{rel}: {value} in name")
    return found
