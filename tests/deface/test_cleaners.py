"""The cleaners through medscrub's own run: NIfTI in, NIfTI out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from deface_heads import face_box

from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.plugins import collect, make_plugin_manager
from medscrub.pseudonyms import Secret

SECRET = Secret(b"deface-test-secret-0123456789", "test")


def _write(folder: Path, name: str, data: np.ndarray, affine: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nib.save(nib.Nifti1Image(data.astype(np.int16), affine), str(path))
    return path


def _run(tmp_path: Path, cleaners: tuple[str, ...], recipe_text: str = ""):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(recipe_text)
    config = RunConfig(recipe, SECRET, tmp_path / "in", tmp_path / "out", cleaners=cleaners, plugins=("nifti", "deface"))
    summary = run_batch(config, workers=1)
    records = [json.loads(line) for line in (tmp_path / "out" / ".medscrub" / "manifest.jsonl").read_text().splitlines()]
    return summary, records


def test_cleaners_are_registered_with_their_flags():
    pm = make_plugin_manager(allowed=("deface",))
    cleaners = {c.name: c for c in collect(pm, "medscrub_register_cleaners")}
    assert cleaners["deface"].flag == "--deface"
    assert cleaners["skull-strip"].flag == "--skull-strip"


def test_deface_through_a_run_changes_the_face_only(tmp_path, ch2):
    data, affine, brain = ch2
    _write(tmp_path / "in", "sub-01_T1w.nii.gz", data, affine)
    summary, records = _run(tmp_path, ("deface",))
    assert summary.exit_code == 0, records
    (record,) = records
    assert record["actions"].get("pixels") == 1 and record["previews"]
    preview = tmp_path / "out" / ".medscrub" / record["previews"][0]["after"]
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "before" not in record["previews"][0]  # "before" pictures show the face: internal only
    out = np.asanyarray(nib.load(str(tmp_path / "out" / record["output"][0])).dataobj)
    changed = out != data.astype(np.int16)
    face = face_box(data.shape, affine) & (data > 30)
    assert changed[face].mean() > 0.6
    assert changed[brain].sum() <= 0.001 * brain.sum()  # the target: at most 0.1 % of the brain


def _ears(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Where ch2's outer ears show (what its field of view keeps of them):
    head tissue more than 80 mm to either side, behind y = -20 mm and
    between z = -55 and -15 mm."""
    ijk = np.indices(data.shape).reshape(3, -1).T
    x, y, z = (ijk @ affine[:3, :3].T + affine[:3, 3]).T
    box = (np.abs(x) > 80) & (y > -55) & (y < -20) & (z > -55) & (z < -15)
    return box.reshape(data.shape) & (data > 30)


def test_ears_go_too_when_the_recipe_says_so(tmp_path, ch2):
    data, affine, brain = ch2
    ears = _ears(data, affine)
    assert ears.sum() > 30
    _write(tmp_path / "in", "head.nii.gz", data, affine)
    summary, records = _run(tmp_path, ("deface",), "[deface]\nears = true\n")
    assert summary.exit_code == 0, records
    (record,) = records
    out = np.asanyarray(nib.load(str(tmp_path / "out" / record["output"][0])).dataobj)
    changed = out != data.astype(np.int16)
    assert changed[ears].all()
    assert changed[face_box(data.shape, affine) & (data > 30)].mean() > 0.6
    assert changed[brain].sum() <= 0.001 * brain.sum()  # the target: at most 0.1 % of the brain
    titles = [p["title"] for p in record["previews"]]
    assert any("right and the left" in t for t in titles), titles
    # without the recipe line the ears stay
    plain = tmp_path / "plain"
    _write(plain / "in", "head.nii.gz", data, affine)
    _, plain_records = _run(plain, ("deface",))
    kept = np.asanyarray(nib.load(str(plain / "out" / plain_records[0]["output"][0])).dataobj)
    assert (kept == data.astype(np.int16))[ears].all()


def test_skull_strip_through_a_run_keeps_the_brain(tmp_path, ch2):
    data, affine, brain = ch2
    _write(tmp_path / "in", "head.nii", data, affine)
    summary, records = _run(tmp_path, ("skull-strip",))
    assert summary.exit_code == 0, records
    out = np.asanyarray(nib.load(str(tmp_path / "out" / records[0]["output"][0])).dataobj)
    kept = out != 0
    assert 2 * (kept & brain).sum() / (kept.sum() + brain.sum()) > 0.85
    assert not (kept & ~(data.astype(np.int16) != 0)).any()  # nothing new appears


def test_a_4d_series_asked_to_be_defaced_is_not_written(tmp_path):
    data = np.random.default_rng(0).integers(0, 100, (16, 16, 12, 3)).astype(np.int16)
    _write(tmp_path / "in", "bold.nii.gz", data, np.eye(4))
    summary, records = _run(tmp_path, ("deface",))
    assert records[0]["status"] == "quarantined" and "no 3D volume" in records[0]["reason"]
    assert summary.exit_code == 1


def test_medscrub_run_deface_on_the_command_line(tmp_path, ch2):
    data, affine, _ = ch2
    _write(tmp_path / "in", "head.nii.gz", data, affine)
    env = dict(os.environ, MEDSCRUB_LOAD_PLUGINS="nifti,deface", MEDSCRUB_SECRET="cli-secret-0123456789abcdef")
    medscrub = [sys.executable, "-c", "from medscrub.cli import main; main()"]
    proc = subprocess.run([*medscrub, "run", str(tmp_path / "in"), str(tmp_path / "out"), "--deface", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "out" / ".medscrub" / "manifest.jsonl").read_text().splitlines()[0])
    assert record["status"] == "done" and record["actions"]["pixels"] == 1 and record["previews"]
    helped = subprocess.run([*medscrub, "deface", "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "train" in helped.stdout and "evaluate" in helped.stdout


def test_cleaners_leave_other_formats_alone():
    from medscrub import Asset, Item
    from medscrub_deface.cleaner import applies

    item = Item(id="x", format="twix", paths=(Path("/x.dat"),), root=Path("/"))
    assert not applies(Asset(item, "twix", None))
