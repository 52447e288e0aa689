"""Benchmark: medscrub-deface's defacer and skull stripper against mede's
(PyPI ``mede``, a MedNeXt network) on the same volumes, in one run.

    pip install -e ./core -e ./plugins/nifti -e ./plugins/deface
    pip install --no-deps mede==0.0.12 torchio==1.2.1
    pip install deprecated humanize jaxtyping psutil   # torchio's and the benchmark's own
    python bench/bench_deface.py [--volumes ch2,pydeface-head,mni152-brain] [--json out.json]

mede pins torch 2.2 and imports torchvision, whose PyPI wheels do not load
beside the CPU torch installed here.  mede uses torchvision for two things
only (``transforms.v2.Lambda`` and a 2D bicubic ``resize``), so each mede run
starts in a fresh process with a small stand-in ``torchvision`` package on
its path that does those with torch itself (``STAND_IN`` below), and a
stand-in ``timm`` (imported by mede.model for a ConvNeXt encoder that the
MedNeXt defacer never builds); mede's own code and weights run unchanged.  Both tools run on CPU, two
threads, each volume in a fresh process; peak memory is the summed resident
memory of the process tree (mede's data loader starts workers), sampled
every 50 ms.

Reported per volume and tool: seconds (wall, the whole process: start,
loading, inference, writing), peak MB, the voxels each removes, their
agreement (Dice of the removed regions), and against the reference masks of
``medscrub deface evaluate``: face removed %, brain lost %, strip Dice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "plugins" / "deface" / "training" / "data.toml"

STAND_IN = {
    "torchvision/__init__.py": '"""Stand-in for torchvision, for the benchmark only: what mede uses."""\n',
    # mede.model imports timm for a ConvNeXt encoder the MedNeXt defacer does
    # not use, and timm imports torchvision's compiled ops: stand in for it too
    "timm/__init__.py": textwrap.dedent('''
        """Stand-in for timm, for the benchmark only: mede's MedNeXt does not use it."""

        def create_model(*args, **kwargs):
            raise RuntimeError("timm is not available in this benchmark")
        '''),
    "torchvision/transforms/__init__.py": "from . import functional, v2  # noqa: F401\n",
    "torchvision/transforms/functional.py": textwrap.dedent('''
        import enum

        class InterpolationMode(enum.Enum):
            NEAREST = "nearest"
            BILINEAR = "bilinear"
            BICUBIC = "bicubic"
        '''),
    "torchvision/transforms/v2/__init__.py": textwrap.dedent('''
        from . import functional  # noqa: F401

        class Lambda:
            def __init__(self, fn):
                self.fn = fn

            def __call__(self, x):
                return self.fn(x)
        '''),
    "torchvision/transforms/v2/functional.py": textwrap.dedent('''
        import torch.nn.functional as F

        def resize(x, size, antialias=True, interpolation=None):
            mode = getattr(interpolation, "value", "bilinear")
            batch = x[None] if x.ndim == 3 else x
            out = F.interpolate(batch.float(), size=tuple(size), mode=mode, antialias=antialias and mode != "nearest",
                                align_corners=False if mode != "nearest" else None)
            return out[0] if x.ndim == 3 else out
        '''),
}

MEDE = textwrap.dedent('''
    import sys, torch
    torch.set_num_threads(2)
    from mede.dicom_skullstrip_defacing import Inference
    Inference(sys.argv[2], gpu=None, deface=sys.argv[3] == "deface", skullstrip=sys.argv[3] == "skullstrip")(sys.argv[1])
    ''')

OURS = textwrap.dedent('''
    import sys, numpy as np, nibabel as nib, torch
    torch.set_num_threads(2)
    from medscrub_deface.segment import predict, removal_region, brain_region
    img = nib.load(sys.argv[1])
    data = np.asanyarray(img.dataobj).astype(np.float32)
    masks = predict(data, img.affine)
    keep = ~removal_region(masks, img.affine) if sys.argv[3] == "deface" else brain_region(masks)
    out = np.where(keep, data, data.min())
    nib.save(nib.Nifti1Image(out, img.affine), sys.argv[2] + "/out.nii.gz")
    ''')


def stand_in(folder: Path) -> Path:
    for rel, text in STAND_IN.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def measure(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak summed RSS (MB) of the process tree, and stderr tail."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[2][:40]!r}... failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    return seconds, peak / 2**20, err


def removed_mask(input_path: Path, output: Path) -> np.ndarray:
    """Voxels an output set to the image's lowest value (or zero) that were not so before, in RAS order."""
    a = nib.as_closest_canonical(nib.load(str(input_path)))
    b = nib.as_closest_canonical(nib.load(str(output)))
    x = np.asanyarray(a.dataobj).astype(np.float32)
    y = np.asanyarray(b.dataobj).astype(np.float32)
    low = min(float(x.min()), 0.0)
    return (y <= low) & (x > low)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return float(2 * (a & b).sum() / s) if s else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", default="ch2,pydeface-head,mni152-brain")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    sys.path.insert(0, str(HERE.parent / "plugins" / "deface" / "src"))
    from medscrub_deface import labels
    from medscrub_deface.model import BRAIN

    heads = labels.heads(DATA, None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        shim = stand_in(tmp / "stand-in")
        env_ours = dict(os.environ, OMP_NUM_THREADS="2")
        env_mede = dict(env_ours, PYTHONPATH=os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")])))
        for name in args.volumes.split(","):
            h = heads[name]
            src = tmp / f"{name}.nii.gz"
            nib.save(nib.Nifti1Image(h.image.astype(np.float32), h.affine), str(src))
            face_ref = h.face_reference & (h.tissue > 0)
            brain_ref = h.target == BRAIN
            row = {"volume": name, "shape": "x".join(map(str, h.image.shape))}
            removed = {}
            for task in ("deface", "skullstrip"):
                for tool, script, env in (("medscrub", OURS, env_ours), ("mede", MEDE, env_mede)):
                    out = tmp / f"{name}-{tool}-{task}"
                    out.mkdir()
                    try:
                        seconds, peak, _ = measure([sys.executable, "-c", script, str(src), str(out), task], env)
                    except RuntimeError as e:
                        row[f"{tool}_{task}_error"] = str(e)
                        print(f"{name} {tool} {task}: {e}", flush=True)
                        continue
                    (result,) = sorted(out.glob("*.nii.gz"))
                    gone = removed_mask(src, result)
                    removed[tool, task] = gone
                    row[f"{tool}_{task}_s"] = round(seconds, 2)
                    row[f"{tool}_{task}_mb"] = round(peak)
                    if task == "deface":
                        row[f"{tool}_face_removed_pct"] = round(100 * float((gone & face_ref).sum()) / face_ref.sum(), 2) if face_ref.any() else None
                        row[f"{tool}_brain_lost_pct"] = round(100 * float((gone & brain_ref).sum()) / brain_ref.sum(), 4)
                    else:
                        row[f"{tool}_strip_dice"] = round(dice(~gone & (h.image > h.image.min()), brain_ref), 4)
                    print(f"{name} {tool} {task}: {seconds:.1f} s, {peak:.0f} MB", flush=True)
                if ("medscrub", task) in removed and ("mede", task) in removed:
                    row[f"{task}_agreement_dice"] = round(dice(removed["medscrub", task], removed["mede", task]), 4)
                    row[f"{task}_time_ratio"] = round(row[f"mede_{task}_s"] / row[f"medscrub_{task}_s"], 1)
                    row[f"{task}_memory_ratio"] = round(row[f"mede_{task}_mb"] / row[f"medscrub_{task}_mb"], 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
