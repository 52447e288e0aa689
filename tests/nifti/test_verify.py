"""The NIfTI/BIDS verifier: clean outputs pass, doctored ones are caught."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import nifti_builders as b
from nibabel.nifti1 import Nifti1Extension

from medscrub.verify import verify_tree
from medscrub_nifti.verify import verify

SIDECAR = "sub-01/ses-01/anat/sub-01_ses-01_T1w.json"
IMAGE = "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz"


def findings(output, original, format, context):
    return [f.line() for f in verify(output, original, format, context)]


def test_clean_outputs_pass(tmp_path, run):
    dataset = b.bids_dataset(tmp_path / "ds")
    b.nifti2(tmp_path / "ds" / "extra" / "n2.nii")
    b.analyze_pair(tmp_path / "ds" / "extra" / "old.hdr")
    recipe = '[dates]\npolicy = "shift"\n'
    summary, out, context = run(dataset, recipe)
    assert summary.exit_code == 0
    for result in summary.results:
        for output in result.output:
            assert findings(out / output, dataset / result.id, result.format, context) == [], output
    found, checked = verify_tree(out, dataset, run.tmp_path / f"recipe{run.count}.toml")
    assert [f.line() for f in found] == [] and checked == len(b.output_texts(out))


def test_doctored_outputs_are_caught(tmp_path, run):
    dataset = b.bids_dataset(tmp_path / "ds")
    summary, out, context = run(dataset)
    assert summary.exit_code == 0

    # a name written back into the header of a .nii.gz: invisible in its compressed bytes
    img = nib.load(out / IMAGE)
    img.header["descrip"] = b"Johnathan Doe follow-up"
    img.header.extensions.append(Nifti1Extension(6, b"reviewed"))
    nib.save(img, out / IMAGE)
    assert b"Johnathan" not in (out / IMAGE).read_bytes()
    lines = findings(out / IMAGE, dataset / IMAGE, "nifti", context)
    assert any("name in header descrip" in line and "Jo***" in line for line in lines)
    assert any("extension not dropped" in line and "comment" in line for line in lines)
    assert all("Johnathan" not in line for line in lines)  # hints are masked

    sidecar = json.loads((out / SIDECAR).read_text())
    sidecar["PatientName"] = b.PATIENT_NAME
    sidecar["ProtocolName"] = f"t1 {b.INSTITUTION}"
    (out / SIDECAR).write_text(json.dumps(sidecar))
    lines = findings(out / SIDECAR, dataset / SIDECAR, "bids-json", context)
    assert any("identifying key in key PatientName" in line for line in lines)
    assert any("institution in key ProtocolName" in line for line in lines)
    # without the original, the structure alone still tells
    assert any("identifying key" in line for line in findings(out / SIDECAR, None, "bids-json", context))

    table = (out / "participants.tsv").read_text().splitlines()
    table = [table[0] + "\tpatient_name", table[1] + "\tJohnathan Doe", table[2] + "\tn/a"]
    (out / "participants.tsv").write_text("\n".join(table) + "\n")
    lines = findings(out / "participants.tsv", dataset / "participants.tsv", "bids-tsv", context)
    assert any("identifying column" in line for line in lines)
    assert any("column patient_name" in line and "name" in line for line in lines)

    found, _ = verify_tree(out, dataset, run.tmp_path / f"recipe{run.count}.toml")
    places = {(f.file, f.kind) for f in found}
    assert (IMAGE, "name") in places and (SIDECAR, "identifying key") in places
    assert ("participants.tsv", "identifying column") in places


def test_original_labels_in_names_are_caught_when_relabelling(tmp_path, run):
    dataset = b.bids_dataset(tmp_path / "ds")
    summary, out, context = run(dataset, '[output]\nnaming = "pseudonymous"\n')
    assert summary.exit_code == 0
    result = {r.id: r for r in summary.results}[SIDECAR]
    produced = out / result.output[0]
    assert findings(produced, dataset / SIDECAR, "bids-json", context) == []
    leaked = produced.with_name("sub-01_T1w.json")
    shutil.copy(produced, leaked)
    assert any("label in file name" in line for line in findings(leaked, dataset / SIDECAR, "bids-json", context))
