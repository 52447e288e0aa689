"""A small BIDS dataset with PHI planted in sidecars, TSVs, headers,
extensions, free text and labels."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import nibabel as nib
import nifti_builders as b
import numpy as np
import pytest

from medscrub.model import MedscrubError


def relative_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".medscrub" not in p.parts}


def shifted(date: str, days: int) -> str:
    return (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()


def tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


@pytest.fixture
def dataset(tmp_path) -> Path:
    return b.bids_dataset(tmp_path / "ds")


def test_mirror_run_keeps_the_layout_and_shifts_dates_like_dicom(dataset, run):
    summary, out, context = run(dataset, '[dates]\npolicy = "shift"\n')
    assert [(r.id, r.reason) for r in summary.results if r.status != "done"] == []
    assert b.leaks(out) == []
    assert relative_files(out) == relative_files(dataset)
    assert (out / "dataset_description.json").read_bytes() == (dataset / "dataset_description.json").read_bytes()

    days = {"01": context.pseudonyms.date_offset(b.PATIENT_ID), "02": context.pseudonyms.date_offset(b.SECOND_ID)}
    assert days["01"] != days["02"] and all(d < 0 for d in days.values())
    for label, date in (("01", b.ACQ_DATE), ("02", b.SECOND_DATE)):
        sidecar = json.loads((out / f"sub-{label}/ses-01/anat/sub-{label}_ses-01_T1w.json").read_text())
        assert sidecar["AcquisitionDateTime"] == f"{shifted(date, days[label])}T10:11:12.500000"
        assert sidecar["AcquisitionTime"] == "10:11:12.500000"  # times of day stay
        assert sidecar["StudyInstanceUID"] == context.pseudonyms.uid(b.sidecar_json()["StudyInstanceUID"])
        assert sidecar["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.4"
        assert sidecar["EchoTime"] == 0.00246 and sidecar["PatientPosition"] == "HFS"
        for key in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "InstitutionAddress",
                    "InstitutionalDepartmentName", "DeviceSerialNumber", "StationName", "OperatorsName",
                    "ImageComments"):
            assert key not in sidecar
        scans = tsv(out / f"sub-{label}/ses-01/sub-{label}_ses-01_scans.tsv")
        assert scans[0]["acq_time"] == f"{shifted(date, days[label])}T10:11:12"
        sessions = tsv(out / f"sub-{label}/sub-{label}_sessions.tsv")
        assert sessions[0] == {"session_id": "ses-01", "acq_time": f"{shifted(date, days[label])}T09:00:00"}
    # the second session of sub-01 moves by the same days: intervals are kept
    second = json.loads((out / "sub-01/ses-02/anat/sub-01_ses-02_T1w.json").read_text())
    assert second["AcquisitionDateTime"].startswith(shifted("2021-09-30", days["01"]))

    participants = tsv(out / "participants.tsv")
    assert participants == [
        {"participant_id": "sub-01", "age": "89", "sex": "M", "group": "control"},
        {"participant_id": "sub-02", "age": "45", "sex": "F", "group": "patient"},
    ]
    assert set(json.loads((out / "participants.json").read_text())) == {"age", "group"}
    assert "left out" in (out / "README").read_text()

    for image in out.rglob("*.nii.gz"):
        original = dataset / image.relative_to(out)
        a, o = nib.load(original), nib.load(image)
        assert np.array_equal(a.affine, o.affine)
        assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(o.dataobj))


def test_sidecar_shift_equals_the_dicom_plugins_shift_for_the_same_patient(tmp_path, run):
    pydicom = pytest.importorskip("pydicom")
    pytest.importorskip("medscrub_dicom")
    from pydicom.data import get_testdata_file

    folder = tmp_path / "in"
    b.bids_dataset(folder / "bids")
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PatientID = b.PATIENT_ID
    ds.PatientName = b.PATIENT_NAME
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = b.ACQ_DATE.replace("-", "")
    (folder / "dicom").mkdir()
    ds.save_as(folder / "dicom" / "mr.dcm")
    config = run.config(folder, '[dates]\npolicy = "shift"\n')
    config.plugins = ("nifti", "dicom")
    from medscrub.pipeline import run_batch

    summary = run_batch(config, workers=1)
    assert [(r.id, r.reason) for r in summary.results if r.status != "done"] == []
    out = config.output_root
    dicom_date = pydicom.dcmread(out / "dicom" / "mr.dcm").StudyDate
    sidecar = json.loads((out / "bids/sub-01/ses-01/anat/sub-01_ses-01_T1w.json").read_text())
    assert sidecar["AcquisitionDateTime"][:10].replace("-", "") == dicom_date != b.ACQ_DATE.replace("-", "")


def test_relabelling_renames_consistently_everywhere(dataset, run):
    summary, out, context = run(dataset, '[output]\nnaming = "pseudonymous"\n[dates]\npolicy = "shift"\n')
    assert [(r.id, r.reason) for r in summary.results if r.status != "done"] == []
    new = {"01": context.patient_pseudonym(b.PATIENT_ID), "02": context.patient_pseudonym(b.SECOND_ID)}
    assert all(re.fullmatch(r"[A-Za-z0-9]+", v) for v in new.values())
    assert b.leaks(out, b.PLANTED + ["sub-01", "sub-02", "ses-01", "ses-02"]) == []
    files = relative_files(out)
    assert len(files) == len(relative_files(dataset))
    assert {"dataset_description.json", "participants.tsv", "participants.json", "README", "CHANGES"} <= files
    assert {p.split("/")[0] for p in files if "/" in p} == {f"sub-{v}" for v in new.values()}
    # every name is the input's name with the labels swapped, so the layout is intact
    sessions = tsv(out / f"sub-{new['01']}/sub-{new['01']}_sessions.tsv")
    ses = [row["session_id"] for row in sessions]
    assert len(set(ses)) == 2 and all(re.fullmatch(r"ses-[A-Za-z0-9]+", s) for s in ses)
    for s in ses:
        base = f"sub-{new['01']}_{s}"
        folder = out / f"sub-{new['01']}" / s
        for row in tsv(folder / f"{base}_scans.tsv"):
            assert (folder / row["filename"]).is_file()
        fmap = json.loads((folder / "fmap" / f"{base}_epi.json").read_text())
        target = fmap["IntendedFor"][0]
        assert target.startswith("bids::") and (out / target[len("bids::"):]).is_file()
    assert [row["participant_id"] for row in tsv(out / "participants.tsv")] == [f"sub-{new['01']}", f"sub-{new['02']}"]


def test_relabelling_needs_pseudonymous_naming_and_alphanumeric_prefix(dataset, run):
    with pytest.raises(MedscrubError, match="naming = 'pseudonymous'"):
        run(dataset, "[nifti]\nrelabel_subjects = true\n")
    with pytest.raises(MedscrubError, match="letters and digits"):
        run(dataset, '[output]\nnaming = "pseudonymous"\n[pseudonyms]\nprefix = "P_"\n')


def test_pseudonymous_naming_without_relabelling_mirrors_bids_names(dataset, run):
    summary, out, _ = run(dataset, '[output]\nnaming = "pseudonymous"\n[nifti]\nrelabel_subjects = false\n')
    assert summary.exit_code == 0
    assert relative_files(out) == relative_files(dataset)


def test_patient_key_is_the_label_without_a_patient_id(tmp_path, run):
    root = tmp_path / "ds"
    b.write_json(root / "dataset_description.json", {"Name": "x", "BIDSVersion": "1.9.0"})
    b.nifti1(root / "sub-07" / "anat" / "sub-07_T1w.nii.gz")
    b.write_json(root / "sub-07" / "anat" / "sub-07_T1w.json", {"AcquisitionDateTime": "2020-01-02T03:04:05"})
    b.write_tsv(root / "sub-07" / "sub-07_scans.tsv", [["filename", "acq_time"], ["anat/sub-07_T1w.nii.gz",
                                                                                  "2020-01-02T03:04:05"]])
    summary, out, context = run(root, '[dates]\npolicy = "shift"\n')
    assert summary.exit_code == 0
    expected = shifted("2020-01-02", context.pseudonyms.date_offset("07"))
    assert json.loads((out / "sub-07/anat/sub-07_T1w.json").read_text())["AcquisitionDateTime"][:10] == expected
    assert tsv(out / "sub-07/sub-07_scans.tsv")[0]["acq_time"][:10] == expected


def test_patient_key_subject_option_ignores_patient_ids(dataset, run):
    _, out, context = run(dataset, '[dates]\npolicy = "shift"\n[nifti]\npatient_key = "subject"\n')
    sidecar = json.loads((out / "sub-02/ses-01/anat/sub-02_ses-01_T1w.json").read_text())
    assert sidecar["AcquisitionDateTime"][:10] == shifted(b.SECOND_DATE, context.pseudonyms.date_offset("02"))


def test_date_policy_remove_and_keep(dataset, run):
    _, out, _ = run(dataset)  # the default policy: remove
    sidecar = json.loads((out / "sub-01/ses-01/anat/sub-01_ses-01_T1w.json").read_text())
    assert "AcquisitionDateTime" not in sidecar and "AcquisitionTime" not in sidecar
    assert tsv(out / "sub-01/ses-01/sub-01_ses-01_scans.tsv")[0]["acq_time"] == "n/a"
    summary, out, _ = run(dataset, '[dates]\npolicy = "keep"\n')
    assert summary.exit_code == 0
    sidecar = json.loads((out / "sub-01/ses-01/anat/sub-01_ses-01_T1w.json").read_text())
    assert sidecar["AcquisitionDateTime"] == f"{b.ACQ_DATE}T10:11:12.500000"


def test_site_rules_for_sidecar_keys_and_columns(dataset, run):
    recipe = """
[[rules]]
match = "InstitutionName"
action = "keep"
[[rules]]
match = "Manufacturer*"
action = "remove"
format = "bids-json"
[[rules]]
match = "tsv:group"
action = "hash"
[[rules]]
match = "tsv:sex"
action = "remove"
"""
    summary, out, _ = run(dataset, recipe)
    assert summary.exit_code == 0
    sidecar = json.loads((out / "sub-01/ses-01/anat/sub-01_ses-01_T1w.json").read_text())
    assert sidecar["InstitutionName"] == b.INSTITUTION  # kept on purpose: not a leak
    assert "Manufacturer" not in sidecar
    rows = tsv(out / "participants.tsv")
    assert "sex" not in rows[0] and rows[0]["group"] not in ("control", "patient") and len(rows[0]["group"]) == 16


def test_text_files_keep_is_leak_checked_and_drop_leaves_them_out(dataset, run):
    summary, out, _ = run(dataset, '[nifti]\ntext_files = "keep"\n')
    result = {r.id: r for r in summary.results}
    assert result["README"].status == "failed" and "leak check" in result["README"].reason
    assert not (out / "README").exists()
    summary, out, _ = run(dataset, '[nifti]\ntext_files = "drop"\n')
    result = {r.id: r for r in summary.results}
    assert result["README"].status == "done" and result["README"].output == []
    assert not (out / "README").exists() and (out / "dataset_description.json").exists()


def test_numeric_files_are_copied_and_text_in_them_is_refused(tmp_path, run):
    root = tmp_path / "ds"
    b.write_json(root / "dataset_description.json", {"Name": "x", "BIDSVersion": "1.9.0"})
    b.nifti1(root / "sub-01" / "dwi" / "sub-01_dwi.nii.gz")
    (root / "sub-01" / "dwi" / "sub-01_dwi.bval").write_text("0 1000 1000\n")
    (root / "sub-01" / "dwi" / "sub-01_dwi.bvec").write_text(f"0 1 0\n0 0 1\n0 0 0 {b.PATIENT_ID}\n")
    (root / "code").mkdir()
    (root / "code" / "convert.py").write_text("print('hello')\n")
    summary, out, _ = run(root)
    status = {r.id: (r.status, r.reason) for r in summary.results}
    assert status["sub-01/dwi/sub-01_dwi.bval"][0] == "done"
    assert (out / "sub-01/dwi/sub-01_dwi.bval").read_text() == "0 1000 1000\n"
    assert status["sub-01/dwi/sub-01_dwi.bvec"][0] == "failed" and "not only numbers" in status[
        "sub-01/dwi/sub-01_dwi.bvec"][1]
    assert status["code/convert.py"][0] == "unsupported"


def test_subject_with_two_patient_ids_is_flagged(tmp_path, run):
    root = tmp_path / "ds"
    b.write_json(root / "dataset_description.json", {"Name": "x", "BIDSVersion": "1.9.0"})
    for ses, pid in (("a", b.PATIENT_ID), ("b", b.SECOND_ID)):
        b.write_json(root / "sub-01" / f"ses-{ses}" / "anat" / f"sub-01_ses-{ses}_T1w.json",
                     {"PatientID": pid, "AcquisitionDateTime": "2020-01-02T03:04:05"})
    summary, out, context = run(root, '[dates]\npolicy = "shift"\n')
    assert all("patient-key" in r.flags for r in summary.results if r.id.startswith("sub-01/"))
    # each sidecar's dates follow its own PatientID, as the DICOM plugin would shift them
    b_side = json.loads((out / "sub-01/ses-b/anat/sub-01_ses-b_T1w.json").read_text())
    assert b_side["AcquisitionDateTime"][:10] == shifted("2020-01-02", context.pseudonyms.date_offset(b.SECOND_ID))


def test_workers_give_the_same_output(dataset, run):
    recipe = '[output]\nnaming = "pseudonymous"\n[dates]\npolicy = "shift"\n'
    _, one, _ = run(dataset, recipe)
    _, two, _ = run(dataset, recipe, workers=2)
    assert relative_files(one) == relative_files(two)
    for rel in relative_files(one):
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
