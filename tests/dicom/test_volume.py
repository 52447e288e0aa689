"""The volume hand-off for DICOM: a series (or one enhanced multi-frame
object) built from a known volume goes to a volume cleaner and back.

The builders place every slice with a known voxel-to-LPS affine, oblique on
purpose, and name the files against the slice order.  A cleaner that blanks
everything in front of the coronal plane y = 0 finds that plane only
through the affine the plugin hands over, so the blanked voxels prove the
geometry; an identity cleaner proves that unchanged voxels come back
bit-identical; dciodvfy proves the series stays valid.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from dciodvfy import DCIODVFY, errors
from dicom_builders import VOLUME_PATIENT, enhanced_volume, lps_affine, rotation, volume_series
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from volume_cleaners import anterior
from volume_cleaners import plugin as volume_plugin

from medscrub import Item
from medscrub.context import RunConfig, RunContext
from medscrub.model import MedscrubError
from medscrub.pipeline import group_items
from medscrub.pseudonyms import Secret

pytest.importorskip("medscrub_dicom")

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SHAPE = (20, 16, 12)  # columns, rows, slices


def head(dtype=np.uint16, low: int = 0) -> np.ndarray:
    """Distinct stored values, so that any voxel put back in the wrong place shows."""
    values = np.arange(np.prod(SHAPE), dtype=np.int64).reshape(SHAPE) % 3000 + low + 1
    return values.astype(dtype)


def oblique() -> np.ndarray:
    return lps_affine(rotation(17, -24), (0.9, 1.1, 2.5), (-10.0, -6.0, -15.0))


def read_series(folder) -> tuple[np.ndarray, list]:
    """The stored voxels of a written series, in slice order, and its datasets."""
    datasets = [dcmread(p) for p in sorted(folder.rglob("*.dcm"))]
    normal = np.cross(*np.reshape(np.array(datasets[0].ImageOrientationPatient, float), (2, 3)))
    datasets.sort(key=lambda ds: float(np.array(ds.ImagePositionPatient, float) @ normal))
    return np.stack([ds.pixel_array.T for ds in datasets], axis=-1), datasets


def volume_run(medscrub_run, tmp_path, cleaner: str):
    return medscrub_run(tmp_path / "in", tmp_path / "out", cleaners=(cleaner,), extra=(volume_plugin,))


def test_a_series_is_one_item_only_when_a_volume_cleaner_runs(tmp_path):
    volume_series(tmp_path / "in" / "a", head(), oblique())
    volume_series(tmp_path / "in" / "b", head(), oblique(), prefix="B")
    for cleaners, expected in (((), 2 * SHAPE[2]), (("test-identity",), 2)):
        config = RunConfig(None, Secret(b"s" * 32, "t"), tmp_path / "in", tmp_path / "out", cleaners=cleaners,
                           extra_plugins=(volume_plugin,), plugins=("dicom",))
        context = RunContext(config)
        items = [Item(p.relative_to(tmp_path / "in").as_posix(), "dicom", (p,), tmp_path / "in")
                 for p in sorted((tmp_path / "in").rglob("*.dcm"))]
        grouped = group_items(items, context)
        assert len(grouped) == expected
    assert {len(item.members) for item in grouped} == {SHAPE[2]}


@pytest.mark.parametrize("kind", ["mr", "ct-rescaled", "rle"])
def test_series_round_trip_gives_identical_voxels_and_a_valid_series(tmp_path, medscrub_run, kind):
    stored = head(np.int16, low=-1024) if kind.startswith("ct") else head()
    options = {"mr": {}, "ct-rescaled": {"modality": "CT", "slope": 0.5, "intercept": -1024.0},
               "rle": {"transfer_syntax": RLELossless}}[kind]
    inputs = volume_series(tmp_path / "in" / "series", stored, oblique(), **options)
    before = {p.name: p.read_bytes() for p in inputs}
    result = volume_run(medscrub_run, tmp_path, "test-identity")
    assert result.exit_code == 0, [r.get("reason") for r in result.records.values()]
    (record,) = result.records.values()  # one item: the series
    assert len(record["members"]) == len(record["output"]) == SHAPE[2]
    assert {p.name: p.read_bytes() for p in inputs} == before  # inputs untouched
    voxels, datasets = read_series(tmp_path / "out")
    assert np.array_equal(voxels, stored)
    assert all(VOLUME_PATIENT.encode() not in p.read_bytes() for p in (tmp_path / "out").rglob("*.dcm"))
    if kind == "rle":  # unchanged slices keep their bytes, transfer syntax included
        assert {str(ds.file_meta.TransferSyntaxUID) for ds in datasets} == {RLELossless}
    if DCIODVFY:
        for source in inputs[:3]:
            output = tmp_path / "out" / source.relative_to(tmp_path / "in")
            assert errors(output) <= errors(source), output.name


@pytest.mark.parametrize("kind", ["mr-oblique", "ct-rescaled", "rle-sagittal"])
def test_a_cleaner_finds_anatomy_through_the_affine(tmp_path, medscrub_run, kind):
    if kind == "rle-sagittal":  # columns run back (+P), rows run down (-S), slices run right (-L)
        affine = lps_affine(np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]]).T, (1.0, 1.0, 2.0), (12.0, -8.0, 20.0))
    else:
        affine = oblique()
    stored = head(np.int16, low=-1024) if kind.startswith("ct") else head()
    options = {"mr-oblique": {}, "ct-rescaled": {"modality": "CT", "slope": 0.5, "intercept": -1024.0},
               "rle-sagittal": {"transfer_syntax": RLELossless}}[kind]
    volume_series(tmp_path / "in", stored, affine, **options)
    result = volume_run(medscrub_run, tmp_path, "test-blank-front")
    assert result.exit_code == 0, [r.get("reason") for r in result.records.values()]
    voxels, datasets = read_series(tmp_path / "out")
    front = anterior(SHAPE, LPS_TO_RAS @ affine)  # from the builder's own geometry
    assert 0 < front.sum() < front.size
    assert np.array_equal(voxels[~front], stored[~front])
    assert np.all(voxels[front] == stored.min())  # lowest value, back in stored units
    changed = [ds for ds in datasets
               if "113102" in {str(item.CodeValue) for item in ds.get("DeidentificationMethodCodeSequence", [])}]
    assert changed and all(ds.RecognizableVisualFeatures == "NO" for ds in changed)
    assert all(str(ds.file_meta.TransferSyntaxUID) == ExplicitVRLittleEndian for ds in changed)
    if DCIODVFY:
        output = next(p for p in (tmp_path / "out").rglob("*.dcm") if dcmread(p).SOPInstanceUID ==
                      changed[0].SOPInstanceUID)
        source = tmp_path / "in" / output.relative_to(tmp_path / "out")
        assert errors(output) <= errors(source)


def test_enhanced_multiframe_object_is_a_volume(tmp_path, medscrub_run):
    stored, affine = head(), oblique()
    source = enhanced_volume(tmp_path / "in" / "enhanced.dcm", stored, affine)
    result = volume_run(medscrub_run, tmp_path, "test-blank-front")
    assert result.exit_code == 0, [r.get("reason") for r in result.records.values()]
    out = dcmread(tmp_path / "out" / "enhanced.dcm")
    order = list(reversed(range(SHAPE[2])))  # the builder's frame order
    voxels = np.empty(SHAPE, stored.dtype)
    voxels[:, :, order] = out.pixel_array.transpose(2, 1, 0)
    front = anterior(SHAPE, LPS_TO_RAS @ affine)
    assert np.array_equal(voxels[~front], stored[~front]) and np.all(voxels[front] == stored.min())
    if DCIODVFY:
        assert errors(tmp_path / "out" / "enhanced.dcm") <= errors(source)


def test_enhanced_ct_from_pydicom_round_trips(tmp_path, medscrub_run):
    (tmp_path / "in").mkdir()
    shutil.copyfile(get_testdata_file("eCT_Supplemental.dcm"), tmp_path / "in" / "ct.dcm")
    result = volume_run(medscrub_run, tmp_path, "test-identity")
    assert result.exit_code == 0, [r.get("reason") for r in result.records.values()]
    assert np.array_equal(dcmread(tmp_path / "out" / "ct.dcm").pixel_array,
                          dcmread(tmp_path / "in" / "ct.dcm").pixel_array)


@pytest.mark.parametrize("damage, reason", [
    ("duplicate", "several images at one position"),
    ("gap", "uneven steps"),
    ("single", "a single 2D image"),
])
def test_what_is_not_a_volume_fails_with_a_reason_and_the_batch_goes_on(tmp_path, medscrub_run, damage, reason):
    stored, affine = head(), oblique()
    paths = volume_series(tmp_path / "in" / "bad", stored if damage != "single" else stored[:, :, :1], affine)
    if damage == "duplicate":  # a second echo at the first position
        ds = dcmread(paths[0])
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(paths[0].with_name("ECHO2.dcm"))
    elif damage == "gap":
        paths[len(paths) // 2].unlink()
    volume_series(tmp_path / "in" / "good", stored, affine)
    result = volume_run(medscrub_run, tmp_path, "test-blank-front")
    by_folder = {record["id"].split("/")[0]: record for record in result.records.values()}
    assert by_folder["good"]["status"] == "done"
    assert by_folder["bad"]["status"] == "failed" and reason in by_folder["bad"]["reason"]
    assert not (tmp_path / "out" / "bad").exists()


def test_put_volume_refuses_another_shape_or_affine(tmp_path):
    volume_series(tmp_path / "in", head(), oblique())
    config = RunConfig(None, Secret(b"s" * 32, "t"), tmp_path / "in", tmp_path / "out", cleaners=("test-identity",),
                       extra_plugins=(volume_plugin,), plugins=("dicom",))
    context = RunContext(config)
    items = [Item(p.name, "dicom", (p,), tmp_path / "in") for p in sorted((tmp_path / "in").glob("*.dcm"))]
    (item,) = group_items(items, context)
    hook = context.pm.hook
    asset = hook.medscrub_read(item=item, context=context)
    volume = hook.medscrub_get_volume(asset=asset, context=context)
    assert volume.data.shape == SHAPE and volume.modality == "MR"
    assert np.allclose(volume.affine, LPS_TO_RAS @ oblique(), atol=1e-5)
    volume.affine = volume.affine @ np.diag([2, 1, 1, 1])
    with pytest.raises(MedscrubError, match="affine"):
        hook.medscrub_put_volume(asset=asset, volume=volume, context=context)
    volume.data = volume.data[:-1]
    with pytest.raises(MedscrubError, match="shape"):
        hook.medscrub_put_volume(asset=asset, volume=volume, context=context)
