"""Benchmark: medscrub-deface's defacer and skull stripper against mede's
(PyPI ``mede``, a MedNeXt network) on the same volumes, in one run.

    pip install -e ./core -e ./plugins/nifti -e ./plugins/deface
    pip install -r requirements-bench.txt                    # what mede and torchio import, psutil
    pip install --no-deps -r bench/requirements-nodeps.txt   # mede and torchio without their pins
    python bench/bench_deface.py [--volumes ch2,pydeface-head,mni152-brain] [--tasks deface,skullstrip]
                                 [--json out.json]

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

Reported per volume, task and tool: seconds (wall, the whole process:
start, loading, inference, writing), peak MB, the voxels each removes, their
agreement (Dice of the removed regions), and against the reference masks of
``medscrub deface evaluate``: face removed %, brain lost %, strip Dice.  The
rows (seconds per volume, ratio to medscrub's) go to ``--json PATH`` or
else bench/results/deface-<time>.json; the details per volume are under
"volumes" there.  If mede is not installed its rows say
so and medscrub's still run.

For the first volume the bench also reports the steady state: each tool
cleans it twice in one process and the second volume's seconds are what
every further volume of a batch costs once start-up is paid (``--no-steady``
skips it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import benchlib
import nibabel as nib
import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
TASKS = ("deface", "skullstrip")
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

# Steady state: one process cleans the same head twice; the second volume's
# time is what each further volume of a batch costs once the process, torch
# and the network are loaded (what `medscrub run` over a folder pays).
STEADY = {
    "medscrub": textwrap.dedent('''
        import sys, time, numpy as np, nibabel as nib, torch
        torch.set_num_threads(2)
        from medscrub_deface.segment import predict, removal_region, brain_region
        for n in range(2):
            start = time.perf_counter()
            img = nib.load(sys.argv[1])
            data = np.asanyarray(img.dataobj).astype(np.float32)
            masks = predict(data, img.affine)
            keep = ~removal_region(masks, img.affine) if sys.argv[3] == "deface" else brain_region(masks)
            nib.save(nib.Nifti1Image(np.where(keep, data, data.min()), img.affine), f"{sys.argv[2]}/out{n}.nii.gz")
            print(f"volume {n} {time.perf_counter() - start:.3f}", file=sys.stderr)
        '''),
    "mede": textwrap.dedent('''
        import sys, time, torch
        torch.set_num_threads(2)
        from mede.dicom_skullstrip_defacing import Inference
        run = Inference(sys.argv[2], gpu=None, deface=sys.argv[3] == "deface", skullstrip=sys.argv[3] == "skullstrip")
        for n in range(2):
            start = time.perf_counter()
            run(sys.argv[1])
            print(f"volume {n} {time.perf_counter() - start:.3f}", file=sys.stderr)
        '''),
}


def steady_seconds(err: str) -> float:
    """The second volume's time from a STEADY script's stderr."""
    times = [float(line.split()[2]) for line in err.splitlines() if line.startswith("volume ")]
    if len(times) < 2:
        raise RuntimeError("the steady-state run did not report two volumes")
    return times[1]


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


def table_rows(volume: dict, tasks: list[str], missing: dict[str, str]) -> list[dict]:
    """Seconds per volume for each task and tool, the details in the notes."""
    rows = []
    for task in tasks:
        for tool in ("medscrub", "mede"):
            metric = f"{task}, {volume['volume']}"
            error = missing[tool] or volume.get(f"{tool}_{task}_error")
            if error:
                note = error if missing[tool] else f"failed: {error}"
                rows.append(benchlib.row(tool, metric, None, "s/volume", note=note))
                continue
            parts = [f"peak {volume[f'{tool}_{task}_mb']} MB"]
            if task == "deface":
                face = volume.get(f"{tool}_face_removed_pct")
                parts += [f"face removed {'-' if face is None else face} %",
                          f"brain lost {volume[f'{tool}_brain_lost_pct']} %"]
            else:
                parts.append(f"strip Dice {volume[f'{tool}_strip_dice']}")
            if tool == "mede" and f"{task}_agreement_dice" in volume:
                parts.append(f"agreement Dice {volume[f'{task}_agreement_dice']}")
            rows.append(benchlib.row(tool, metric, volume[f"{tool}_{task}_s"], "s/volume", note="; ".join(parts)))
        for tool in ("medscrub", "mede"):
            metric = f"{task}, {volume['volume']}, steady state (second volume in one process)"
            if f"{tool}_{task}_steady_s" in volume:
                rows.append(benchlib.row(tool, metric, volume[f"{tool}_{task}_steady_s"], "s/volume",
                                         note="process, torch and network already loaded"))
            elif f"{tool}_{task}_steady_error" in volume:
                rows.append(benchlib.row(tool, metric, None, "s/volume",
                                         note=f"failed: {volume[f'{tool}_{task}_steady_error']}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", default="ch2,pydeface-head,mni152-brain")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of: " + ", ".join(TASKS))
    parser.add_argument("--json", type=Path, help="also write the report here (bench/run_all.py uses this)")
    parser.add_argument("--no-steady", dest="steady", action="store_false",
                        help="skip the steady-state rows (each tool cleaning the first volume twice in one process)")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks or set(tasks) - set(TASKS):
        parser.error(f"--tasks takes a subset of {', '.join(TASKS)}")
    names = [n.strip() for n in args.volumes.split(",") if n.strip()]
    # mede also needs torchio, which its --no-deps install leaves to the user
    missing = {"medscrub": benchlib.not_installed("torch", "medscrub_deface"),
               "mede": benchlib.not_installed("mede", "torchio")}

    if missing["medscrub"]:  # the heads are medscrub-deface's evaluation data
        missing["mede"] = missing["mede"] or f"not run: the volumes come from medscrub-deface ({missing['medscrub']})"
        volumes = [{"volume": name} for name in names]
    else:
        sys.path.insert(0, str(HERE.parent / "plugins" / "deface" / "src"))
        from medscrub_deface import labels
        from medscrub_deface.model import BRAIN

        print("building the evaluation heads ...", file=sys.stderr, flush=True)
        heads = labels.heads(DATA, None)
        unknown = [n for n in names if n not in heads]
        if unknown:
            parser.error(f"unknown volume(s) {', '.join(unknown)}; use {', '.join(heads)}")
        volumes = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        shim = stand_in(tmp / "stand-in")
        env_ours = dict(os.environ, OMP_NUM_THREADS="2")
        env_mede = dict(env_ours, PYTHONPATH=os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")])))
        for name in names if not missing["medscrub"] else []:
            h = heads[name]
            src = tmp / f"{name}.nii.gz"
            nib.save(nib.Nifti1Image(h.image.astype(np.float32), h.affine), str(src))
            face_ref = h.face_reference & (h.tissue > 0)
            brain_ref = h.target == BRAIN
            row = {"volume": name, "shape": "x".join(map(str, h.image.shape))}
            removed = {}
            for task in tasks:
                for tool, script, env in (("medscrub", OURS, env_ours), ("mede", MEDE, env_mede)):
                    if missing[tool]:
                        continue
                    out = tmp / f"{name}-{tool}-{task}"
                    out.mkdir()
                    try:
                        seconds, peak, _ = measure([sys.executable, "-c", script, str(src), str(out), task], env)
                    except RuntimeError as e:
                        row[f"{tool}_{task}_error"] = str(e)
                        print(f"{name} {tool} {task}: {e}", file=sys.stderr, flush=True)
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
                    print(f"{name} {tool} {task}: {seconds:.1f} s, {peak:.0f} MB", file=sys.stderr, flush=True)
                if args.steady and name == names[0]:
                    for tool, env in (("medscrub", env_ours), ("mede", env_mede)):
                        if missing[tool]:
                            continue
                        out = tmp / f"{name}-{tool}-{task}-steady"
                        out.mkdir()
                        try:
                            _, _, err = measure([sys.executable, "-c", STEADY[tool], str(src), str(out), task], env)
                            row[f"{tool}_{task}_steady_s"] = round(steady_seconds(err), 2)
                        except RuntimeError as e:
                            row[f"{tool}_{task}_steady_error"] = str(e)
                            continue
                        print(f"{name} {tool} {task}, steady state: {row[f'{tool}_{task}_steady_s']} s",
                              file=sys.stderr, flush=True)
                if ("medscrub", task) in removed and ("mede", task) in removed:
                    row[f"{task}_agreement_dice"] = round(dice(removed["medscrub", task], removed["mede", task]), 4)
                    row[f"{task}_time_ratio"] = round(row[f"mede_{task}_s"] / row[f"medscrub_{task}_s"], 1)
                    row[f"{task}_memory_ratio"] = round(row[f"mede_{task}_mb"] / row[f"medscrub_{task}_mb"], 1)
            volumes.append(row)
    rows = [r for volume in volumes for r in table_rows(volume, tasks, missing)]
    benchlib.add_ratios(rows, {r["metric"]: "medscrub" for r in rows})
    inputs = f"{len(names)} head volume(s) ({', '.join(names)}), CPU, 2 threads, each run a fresh process"
    report = benchlib.report("deface", rows, inputs=inputs, volumes=volumes,
                             versions_=benchlib.versions("medscrub-deface", "torch", "mede", "torchio"))
    benchlib.show(report)
    print(f"\nresults: {benchlib.save(report, args.json)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
