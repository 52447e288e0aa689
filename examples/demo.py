"""De-identify generated sample data into a folder you can look at.

    python examples/demo.py [OUTPUT_FOLDER]

Builds a small input tree (``sample-in/``) from the DICOM test files that
pydicom ships, with a made-up patient planted in names, IDs, dates, nested
sequences and private tags, then runs ``medscrub run`` and ``medscrub verify``
on it and prints what changed. The secret is a demo key written next to the
sample data; a real run uses your own (``medscrub secret new``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

FILES = ("CT_small.dcm", "MR_small.dcm", "US1_J2KR.dcm", "rtplan.dcm")


def plant(ds: Dataset, n: int) -> Dataset:
    ds.PatientName = "Doe^Jane^Q"
    ds.PatientID = "MRN-0048151623"
    ds.PatientBirthDate = "19610412"
    ds.InstitutionName = "Saint Example Hospital"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.StudyDate = ds.SeriesDate = "20240229"
    ds.AccessionNumber = f"ACC{n:06d}"
    ds.PatientComments = "Jane Doe, called 555-0199 about results"
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    req = Dataset()
    req.RequestingPhysician = "Cuddy^Lisa"
    req.RequestedProcedureID = "RP-77812"
    ref.RequestAttributesSequence = Sequence([req])
    ds.ReferencedImageSequence = Sequence([ref])
    block = ds.private_block(0x0029, "DEMO HOSPITAL PACS", create=True)
    block.add_new(0x10, "LO", "Doe Jane 19610412")
    return ds


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("sample-out")
    base = out.parent.absolute()
    src = base / "sample-in"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    (src / "study").mkdir(parents=True)
    for n, name in enumerate(FILES):
        ds = pydicom.dcmread(get_testdata_file(name))
        plant(ds, n).save_as(src / "study" / name)
    key = base / "sample-demo.key"
    key.write_text("demo-secret-do-not-use-for-real-data\n")
    key.chmod(0o600)
    run = [sys.executable, "-m", "medscrub", "run", str(src), str(out), "--secret-file", str(key), "--workers", "2"]
    print("$", " ".join(run[2:]))
    status = subprocess.call(run)
    check = [sys.executable, "-m", "medscrub", "verify", str(out), "--against", str(src)]
    print("$", " ".join(check[2:]))
    status = subprocess.call(check) or status
    before = pydicom.dcmread(src / "study" / "CT_small.dcm")
    after = pydicom.dcmread(out / "study" / "CT_small.dcm")
    print("\nCT_small.dcm, before -> after:")
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "StudyDate", "StudyInstanceUID"):
        new = after.get(keyword, "(removed)")
        print(f"  {keyword:18} {str(before.get(keyword, '')):32.32} -> {new if str(new) else '(empty)'}")
    print(f"\nInput: {src}\nOutput: {out.absolute()}\nManifest: {out.absolute() / '.medscrub' / 'manifest.jsonl'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
