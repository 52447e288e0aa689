"""Benchmark the twix plugin against a plain copy on a generated multi-GB file.

    python bench/bench_twix.py                 # 2 GB in a temporary folder
    python bench/bench_twix.py --size 10 --dir /scratch

Generates a VD twix file (an adjustment scan and one large measurement) with
planted PHI, warms the page cache, then times in one run: ``shutil.copyfile``,
medscrub with the in-run leak check switched off (what the plugin itself
costs: read headers, plan, stream, self-check) and medscrub with the default
recipe (plus the core's leak check of the whole output).  Each medscrub run
is a fresh subprocess that reports its own peak RSS.  Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.pseudonyms import Secret
source, out, recipe = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
recipe = Path(recipe) if recipe else None
start = time.perf_counter()
summary = run_batch(RunConfig(recipe, Secret(b"bench-secret-0123456789abcdef", "bench"), source, out), workers=1)
seconds = time.perf_counter() - start
r = summary.results[0]
print(json.dumps({"seconds": seconds, "status": r.status, "reason": r.reason,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, size_gb: float) -> None:
    from medscrub_twix import synthetic

    scans = [synthetic.Scan("AdjCoilSens", 8, 4, 64, 100, 7), synthetic.Scan("t1_bench_DOE", 0, 32, 512, 101, 1)]
    synthetic.write(path, synthetic.Twix("VD", scans), data_bytes=int(size_gb * 1e9))


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def plain_copy(source: Path, target: Path) -> float:
    start = time.perf_counter()
    shutil.copyfile(source, target)
    seconds = time.perf_counter() - start
    target.unlink()
    return seconds


def medscrub(source: Path, out: Path, recipe: Path | None) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(source), str(out), str(recipe or "")],
                          capture_output=True, text=True, env={**os.environ, "MEDSCRUB_LOAD_PLUGINS": "twix"})
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=2.0, help="size of the generated file in GB (default 2)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        source = tmp / "in" / "meas_MID00101_bench.dat"
        source.parent.mkdir()
        start = time.perf_counter()
        generate(source, args.size)
        size = source.stat().st_size
        print(f"generated {size / 1e9:.2f} GB in {time.perf_counter() - start:.1f} s")
        warm(source)
        no_verify = tmp / "no-verify.toml"
        no_verify.write_text("[run]\nverify = false\n")
        copy1 = plain_copy(source, tmp / "copy.dat")
        plugin = medscrub(source, tmp / "out1", no_verify)
        full = medscrub(source, tmp / "out2", None)
        copy2 = plain_copy(source, tmp / "copy.dat")
        copy = min(copy1, copy2)
        print(f"plain copy (shutil.copyfile): {copy:.2f} s (runs: {copy1:.2f}, {copy2:.2f})")
        for label, r in (("medscrub, leak check off", plugin), ("medscrub, default recipe", full)):
            print(f"{label}: {r['seconds']:.2f} s, ratio {r['seconds'] / copy:.2f}x, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB, status {r['status']}"
                  + (f" ({r['reason']})" if r["reason"] else ""))


if __name__ == "__main__":
    main()
