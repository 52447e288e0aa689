"""NIfTI-1, NIfTI-2, .nii.gz, NIfTI pairs and Analyze pairs, built with PHI
in every header text field and extension, and the files nibabel ships."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import nifti_builders as b
import numpy as np
import pytest
from nibabel.testing import data_path
from volume_cleaners import plugin as volume_plugin

from medscrub import Item
from medscrub.model import MedscrubError
from medscrub_nifti.header import TEXT_FIELDS, read_nifti
from medscrub_nifti.reader import read

# Header fields the plugin may change; everything else must stay bit-identical.
CHANGEABLE = {name for fields in TEXT_FIELDS.values() for name in fields} | {"vox_offset"}


def build_images(folder: Path) -> dict[str, Path]:
    return {
        "nifti1.nii": b.nifti1(folder / "t1_single.nii"),
        "nifti1.nii.gz": b.nifti1(folder / "t1_scaled.nii.gz", slope=0.5),
        "nifti1-4d.nii.gz": b.nifti1(folder / "bold.nii.gz", dtype=np.float32, shape=(6, 5, 4, 3)),
        "nifti2.nii.gz": b.nifti2(folder / "t2_nifti2.nii.gz"),
        "nifti2.nii": b.nifti2(folder / "t2_nifti2_plain.nii"),
        "nifti1-pair": b.nifti_pair(folder / "pair.hdr"),
        "analyze": b.analyze_pair(folder / "analyze.hdr"),
    }


def assert_same_image(original: Path, output: Path) -> None:
    a, o = nib.load(original), nib.load(output)
    assert type(a) is type(o)
    assert np.array_equal(a.affine, o.affine)
    assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(o.dataobj))
    assert a.get_data_dtype() == o.get_data_dtype()
    ha, ho = read_nifti((original,)).header, read_nifti((output,)).header
    for name in ha.template_dtype.names:
        if name not in CHANGEABLE:
            assert ha[name].tobytes() == ho[name].tobytes(), name
    if hasattr(ha, "get_qform"):
        assert np.array_equal(ha.get_qform(), ho.get_qform()) and ha["qform_code"] == ho["qform_code"]
        assert np.array_equal(ha.get_sform(), ho.get_sform()) and ha["sform_code"] == ho["sform_code"]


def test_images_lose_every_planted_value_and_keep_geometry_and_data(tmp_path, run):
    images = build_images(tmp_path / "in")
    summary, out, _ = run(tmp_path / "in")
    assert [r.reason for r in summary.results if r.status != "done"] == []
    assert b.leaks(out) == []
    for path in images.values():
        rel = path.relative_to(tmp_path / "in")
        assert_same_image(path, out / rel)
        header = read_nifti((out / rel,))
        for name in TEXT_FIELDS[header.kind]:
            assert header.text(name) == b"", name
        codes = [e.code for e in header.extensions]
        assert 2 not in codes and 6 not in codes
        for ext in header.extensions:  # the JSON extension is kept, cleaned
            data = ext.json()
            assert data is not None and "PatientName" not in data and "InstitutionName" not in data
            assert data["EchoTime"] == 0.00246 and "AcquisitionDateTime" not in data  # dates: remove
    # compression is kept, the pair stays a pair
    assert (out / "t1_scaled.nii.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (out / "t1_single.nii").read_bytes()[344:348] == b"n+1\0"
    assert (out / "pair.img").is_file() and (out / "analyze.img").is_file()
    record = {r.id: r for r in summary.results}["analyze.hdr"]
    assert record.output == ["analyze.hdr", "analyze.img"]


def test_gzip_outputs_are_deterministic(tmp_path, run):
    b.nifti1(tmp_path / "in" / "a.nii.gz")
    _, first, _ = run(tmp_path / "in")
    _, second, _ = run(tmp_path / "in")
    raw = (first / "a.nii.gz").read_bytes()
    assert raw == (second / "a.nii.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # mtime 0
    assert raw[3] & 0x08 == 0  # no file name in the gzip header
    gzip.decompress(raw)


def test_hidden_bytes_after_a_kept_field_are_removed(tmp_path, run):
    img = nib.Nifti1Image(b.voxels(), b.AFFINE)
    img.header["descrip"] = b"FSL5.0\0" + b.PATIENT_ID.encode()
    (tmp_path / "in").mkdir()
    nib.save(img, tmp_path / "in" / "x.nii")
    summary, out, _ = run(tmp_path / "in", '[[rules]]\nmatch = "descrip"\naction = "keep"\nformat = "nifti"\n')
    assert summary.exit_code == 0
    assert read_nifti((out / "x.nii",)).text("descrip") == b"FSL5.0"


def test_site_rules_for_fields_and_extensions(tmp_path, run):
    b.nifti1(tmp_path / "in" / "x.nii.gz")
    recipe = """
[[rules]]
match = "aux_file"
action = "replace"
value = "atlas-lut"
format = "nifti"
[[rules]]
match = "ext:json"
action = "remove"
format = "nifti"
[[rules]]
match = "intent_name"
action = "hash"
"""
    summary, out, _ = run(tmp_path / "in", recipe)
    assert summary.exit_code == 0
    header = read_nifti((out / "x.nii.gz",))
    assert header.text("aux_file") == b"atlas-lut"
    assert len(header.text("intent_name")) == 16 and b"Johnathan" not in header.text("intent_name")
    assert header.extensions == []
    assert b.leaks(out) == []


@pytest.mark.parametrize(
    "rule, message",
    [
        ('match = "ext:bogus"\naction = "remove"', "not a nifti selector"),
        ('match = "ext:comment"\naction = "empty"', "only be kept or removed"),
        ('match = "descrip"\naction = "shift"', "cannot be shifted"),
        ('match = "intent_name"\naction = "replace"\nvalue = "far-too-long-for-sixteen-bytes"', "longer than"),
    ],
)
def test_check_rules_refuses_what_cannot_work(tmp_path, run, rule, message):
    b.nifti1(tmp_path / "in" / "x.nii")
    with pytest.raises(MedscrubError, match=message):
        run(tmp_path / "in", f'[[rules]]\n{rule}\nformat = "nifti"\n')


def test_the_files_nibabel_ships(tmp_path, run):
    src = Path(data_path)
    folder = tmp_path / "in"
    folder.mkdir()
    names = ["anatomical.nii", "functional.nii", "example4d.nii.gz", "example_nifti2.nii.gz", "standard.nii.gz",
             "reoriented_anat_moved.nii", "row_major.dconn.nii"]
    for name in names:
        shutil.copy(src / name, folder / name)
    # nibabel ships its pair headers without images: give each the data it declares
    for name in ("analyze.hdr", "nifti1.hdr", "nifti2.hdr"):
        shutil.copy(src / name, folder / name)
        proxy = nib.load(folder / name).dataobj  # the proxy keeps the offset the header declares
        size = int(proxy.offset) + proxy.dtype.itemsize * int(np.prod(proxy.shape))
        (folder / name).with_suffix(".img").write_bytes(np.arange(size, dtype=np.uint8).tobytes())
    summary, out, _ = run(folder)
    assert [(r.id, r.reason) for r in summary.results if r.status != "done"] == []
    for name in [*names, "analyze.hdr", "nifti1.hdr", "nifti2.hdr"]:
        a, o = nib.load(folder / name), nib.load(out / name)
        if isinstance(a, nib.Cifti2Image):
            assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(o.dataobj))
            assert a.header.to_xml() == o.header.to_xml()  # the CIFTI extension is structure: kept
            continue
        assert_same_image(folder / name, out / name)
    assert read_nifti((out / "example4d.nii.gz",)).extensions == []  # two comment extensions dropped
    assert b"FSL" not in gzip.decompress((out / "example4d.nii.gz").read_bytes())[:352]


def test_damaged_inputs_fail_alone_with_a_reason(tmp_path, run):
    folder = tmp_path / "in"
    b.nifti1(folder / "good.nii")
    (folder / "bad.nii").write_bytes(b"not a nifti file at all" * 40)
    truncated = (folder / "good.nii").read_bytes()[:500]
    (folder / "short.nii").write_bytes(truncated)
    shutil.copy(folder / "good.nii", folder / "lonely.hdr")  # n+1 magic in a .hdr
    summary, _, _ = run(folder)
    reasons = {r.id: (r.status, r.reason) for r in summary.results}
    assert reasons["good.nii"][0] == "done"
    assert reasons["bad.nii"] == ("failed", "not a NIfTI or Analyze file (no valid sizeof_hdr)")
    assert reasons["short.nii"][0] == "failed" and "truncated" in reasons["short.nii"][1]
    assert reasons["lonely.hdr"][0] == "failed"


@pytest.mark.parametrize("slope", [None, 0.5])
def test_volume_hand_off_round_trip_gives_identical_voxels(tmp_path, run, slope):
    b.nifti1(tmp_path / "in" / "t1.nii.gz", slope=slope)
    b.analyze_pair(tmp_path / "in" / "old.hdr")
    summary, out, _ = run(tmp_path / "in", cleaners=("test-identity",), extra=(volume_plugin,))
    assert summary.exit_code == 0
    assert all(r.actions.get("pixels") == 1 for r in summary.results)
    for name in ("t1.nii.gz", "old.hdr"):
        assert_same_image(tmp_path / "in" / name, out / name)


def test_volume_hand_off_puts_changed_voxels_back_in_place(tmp_path, run):
    original = b.nifti1(tmp_path / "in" / "t1.nii.gz", slope=0.5)
    summary, out, _ = run(tmp_path / "in", cleaners=("test-blank-corner",), extra=(volume_plugin,))
    assert summary.exit_code == 0
    a, o = nib.load(original), nib.load(out / "t1.nii.gz")
    before, after = np.asanyarray(a.dataobj), np.asanyarray(o.dataobj)
    assert np.array_equal(a.affine, o.affine) and o.get_data_dtype() == a.get_data_dtype()
    assert np.all(after[:4, :4, :4] == 0)  # zero in scaled units: (0 - 3) / 0.5 stored
    mask = np.ones(before.shape, bool)
    mask[:4, :4, :4] = False
    assert np.array_equal(before[mask], after[mask])


def test_get_volume_gives_ras_affine_and_modality_and_refuses_4d(tmp_path, run):
    from medscrub.context import RunContext

    folder = tmp_path / "in"
    three = b.nifti1(folder / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    four = b.nifti1(folder / "sub-01" / "func" / "sub-01_task-x_bold.nii.gz", dtype=np.float32, shape=(4, 4, 4, 2))
    context = RunContext(run.config(folder))
    hook = context.pm.hook

    def asset(path):
        item = Item(path.relative_to(folder).as_posix(), "nifti", (path,), folder)
        found = read(item, context)
        hook.medscrub_apply_rules(asset=found, rules=context.rules, context=context)
        return found

    volume = hook.medscrub_get_volume(asset=asset(three), context=context)
    assert volume.data.shape == (12, 14, 10) and np.array_equal(volume.affine, nib.load(three).affine)
    assert volume.modality == "MR"
    assert hook.medscrub_get_volume(asset=asset(four), context=context) is None
    volume.affine = volume.affine @ np.diag([2, 1, 1, 1])
    with pytest.raises(MedscrubError, match="affine"):
        hook.medscrub_put_volume(asset=asset(three), volume=volume, context=context)


def test_json_extension_dates_follow_the_policy(tmp_path, run):
    b.nifti1(tmp_path / "in" / "x.nii")
    _, out, context = run(tmp_path / "in", '[dates]\npolicy = "shift"\n')
    ext = read_nifti((out / "x.nii",)).extensions[0]
    data = json.loads(ext.content.rstrip(b"\0"))
    days = context.pseudonyms.date_offset(b.PATIENT_ID)
    expected = (dt.date.fromisoformat(b.ACQ_DATE) + dt.timedelta(days=days)).isoformat()
    assert data["AcquisitionDateTime"] == f"{expected}T10:11:12.500000"
    assert data["AcquisitionTime"] == "10:11:12.500000"


def test_a_kept_field_that_names_the_patient_is_withheld_even_inside_gzip(tmp_path, run):
    b.nifti1(tmp_path / "in" / "x.nii.gz")  # descrip names the patient the JSON extension names
    summary, out, _ = run(tmp_path / "in", '[[rules]]\nmatch = "descrip"\naction = "keep"\nformat = "nifti"\n')
    [result] = summary.results
    assert result.status == "failed" and "leak check" in result.reason and b.PATIENT_ID not in result.reason
    assert not (out / "x.nii.gz").exists()
