"""Benchmark: medscrub-wsi against a plain copy of the same multi-GB slide.

Generates an Aperio-like BigTIFF (tiled level 0, stripped thumbnail, label
and macro at the end, PHI in every description), then in one run:

1. a plain copy (``shutil.copyfile`` + ``fsync``, as the core fsyncs every
   output before it lands),
2. ``medscrub`` on it, in a subprocess whose peak RSS is measured,

and prints seconds, the ratio and the peak memory.  The rows go to
``--json PATH`` or else bench/results/wsi-<time>.json.  Not a test; not in
CI.

    python bench/bench_wsi.py                 # 2 GB slide in a temporary folder
    python bench/bench_wsi.py --gb 6 --dir /data/tmp [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib

TILE = 512
TILE_BYTES = TILE * TILE * 3  # uncompressed RGB tiles
DESCRIPTION = (
    "Aperio Image Library v12.0.5\r\n{w}x{h} [0,0 {w}x{h}] (512x512) RAW|AppMag = 40|StripeWidth = 1000|"
    "ScanScope ID = SS1234567|Filename = BenchPatient_MRN0000001|Title = Bench^Patient|Date = 03/14/21|"
    "Time = 10:22:33|User = benchoperator|Barcode = BC-0000001|MPP = 0.2500"
)


def _entry(tag: int, typ: int, count: int, value: bytes) -> bytes:
    return struct.pack("<HHQ", tag, typ, count) + value.ljust(8, b"\0")


def _ifd(entries: list[tuple[int, int, int, bytes]], values_at: int) -> tuple[bytes, bytes]:
    """An IFD block and its out-of-line values placed at ``values_at``."""
    values = bytearray()
    rows = []
    for tag, typ, count, raw in sorted(entries):
        if len(raw) > 8:
            rows.append(_entry(tag, typ, count, struct.pack("<Q", values_at + len(values))))
            values += raw + b"\0" * (-len(raw) % 8)
        else:
            rows.append(_entry(tag, typ, count, raw))
    return struct.pack("<Q", len(rows)) + b"".join(rows), bytes(values)


def _image_entries(width: int, height: int, description: str, subfile: int) -> list:
    desc = description.encode() + b"\0"
    return [
        (254, 4, 1, struct.pack("<I", subfile)), (256, 4, 1, struct.pack("<I", width)),
        (257, 4, 1, struct.pack("<I", height)), (258, 3, 3, struct.pack("<3H", 8, 8, 8)),
        (259, 3, 1, struct.pack("<H", 1)), (262, 3, 1, struct.pack("<H", 2)),
        (270, 2, len(desc), desc), (277, 3, 1, struct.pack("<H", 3)), (284, 3, 1, struct.pack("<H", 1)),
    ]


def generate(path: Path, gigabytes: float) -> None:
    """Write the slide in streaming fashion (a 64 MB random pool reused)."""
    tiles = max(4, int(gigabytes * (1 << 30)) // TILE_BYTES)
    across = int(tiles ** 0.5)
    down = tiles // across
    tiles = across * down
    pool = os.urandom(64 << 20)
    with open(path, "w+b") as f:
        f.write(b"II+\0" + struct.pack("<HHQ", 8, 0, 0))
        offsets = []
        for i in range(tiles):
            start = (i * 7919 * 64) % (len(pool) - TILE_BYTES)
            offsets.append(f.tell())
            f.write(pool[start:start + TILE_BYTES])
        images = {}
        for name, (w, h, subfile) in {"thumbnail": (256, 192, 0), "label": (400, 300, 1), "macro": (1200, 400, 9)}.items():
            images[name] = (f.tell(), w * h * 3, w, h, subfile)
            f.write(os.urandom(w * h * 3))
        ifd_offsets = []
        blocks = []
        w0, h0 = across * TILE, down * TILE
        level0 = _image_entries(w0, h0, DESCRIPTION.format(w=w0, h=h0), 0) + [
            (322, 3, 1, struct.pack("<H", TILE)), (323, 3, 1, struct.pack("<H", TILE)),
            (324, 16, tiles, struct.pack(f"<{tiles}Q", *offsets)),
            (325, 16, tiles, struct.pack(f"<{tiles}Q", *([TILE_BYTES] * tiles))),
        ]
        blocks.append(level0)
        for name, (off, n, w, h, subfile) in images.items():
            desc = f"Aperio Image Library v12.0.5\r\n{name} {w}x{h}" if name != "thumbnail" else \
                DESCRIPTION.format(w=w0, h=h0).replace("RAW", f"-> {w}x{h}")
            blocks.append(_image_entries(w, h, desc, subfile) + [
                (273, 16, 1, struct.pack("<Q", off)), (278, 4, 1, struct.pack("<I", h)),
                (279, 16, 1, struct.pack("<Q", n)),
            ])
        for entries in blocks:
            at = f.tell()
            ifd_offsets.append(at)
            block, _ = _ifd(entries, 0)
            values_at = at + len(block) + 8
            block, values = _ifd(entries, values_at)
            f.write(block + b"\0" * 8 + values)
        for i, at in enumerate(ifd_offsets):
            f.seek(at)
            (n,) = struct.unpack("<Q", f.read(8))
            f.seek(at + 8 + 20 * n)
            f.write(struct.pack("<Q", ifd_offsets[i + 1] if i + 1 < len(ifd_offsets) else 0))
        f.seek(8)
        f.write(struct.pack("<Q", ifd_offsets[0]))


def edit_only(inp: Path, slide: Path, work: Path) -> tuple[float, float]:
    """Best of three: the plugin's streaming edit alone against ``shutil.copyfile``,
    both without fsync: the plugin's own cost, apart from the disk and the core."""
    from medscrub import Item
    from medscrub.context import RunConfig, RunContext
    from medscrub.pseudonyms import Secret
    from medscrub_wsi import edit
    from medscrub_wsi.options import WsiOptions
    from medscrub_wsi.reader import prepare, read_item

    context = RunContext(RunConfig(None, Secret(b"bench-secret-0123456789"), inp, work / "unused", plugins=("wsi",)))
    asset = read_item(Item(slide.name, "wsi", (slide,), inp, slide.stat().st_size), context)
    prepare(asset, context.rules, context, WsiOptions())
    edits, copies = [], []
    for _ in range(3):
        start = time.perf_counter()
        shutil.copyfile(slide, work / "copy.svs")
        copies.append(time.perf_counter() - start)
        (work / "copy.svs").unlink()
        start = time.perf_counter()
        edit.apply(asset.data.plan, slide, work / "edit.svs")
        edits.append(time.perf_counter() - start)
        (work / "edit.svs").unlink()
    return min(edits), min(copies)


def plain_copy(source: Path, target: Path) -> float:
    start = time.perf_counter()
    shutil.copyfile(source, target)
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    return time.perf_counter() - start


CHILD = """
import json, resource, sys, time
from pathlib import Path
from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.pseudonyms import Secret
recipe = Path(sys.argv[3]) if len(sys.argv) > 3 else None
start = time.perf_counter()
summary = run_batch(RunConfig(recipe, Secret(b"bench-secret-0123456789"), Path(sys.argv[1]), Path(sys.argv[2]),
                              plugins=("wsi",)))
wall = time.perf_counter() - start
result = summary.results[0]
print(json.dumps({"status": result.status, "reason": result.reason, "item_seconds": result.seconds,
                  "wall": wall, "output": result.output,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def medscrub_run(inp: Path, out: Path, recipe: Path | None) -> dict:
    """One medscrub run in a fresh process: what it reports, or its error."""
    command = [sys.executable, "-c", CHILD, str(inp), str(out)] + ([str(recipe)] if recipe else [])
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"error": (child.stderr.strip().splitlines() or [f"exit {child.returncode}"])[-1][:200]}
    report = json.loads(lines[-1])
    if report["output"]:
        report["output_gib"] = (out / report["output"][0]).stat().st_size / (1 << 30)
    shutil.rmtree(out, ignore_errors=True)
    return report


def run_rows(label: str, report: dict, copy_s: float) -> dict:
    if "error" in report:
        return benchlib.row(label, "whole run", None, "s", note=f"failed: {report['error']}")
    note = (f"item (read, plan, write, fsync) {report['item_seconds']:.2f} s = "
            f"{report['item_seconds'] / copy_s:.2f}x; peak RSS {report['peak_rss_mb']:.0f} MB")
    if report["status"] != "done":
        note += f"; status {report['status']}: {report['reason']}"
    return benchlib.row(label, "whole run", report["wall"], "s", note=note, **report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="slide size in GiB (default 2)")
    parser.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--json", type=Path, help="also write the report here (bench/run_all.py uses this)")
    args = parser.parse_args(argv)
    missing = benchlib.not_installed("medscrub", "medscrub_wsi")
    inputs = missing  # replaced by what was measured
    if missing:
        rows = [benchlib.row(tool, metric, None, "s", note=missing) for tool, metric in (
            ("plain copy", "edit only, no fsync"), ("medscrub-wsi edit", "edit only, no fsync"),
            ("plain copy + fsync", "whole run"), ("medscrub, leak check on", "whole run"),
            ("medscrub, leak check off", "whole run"))]
    else:
        work = Path(tempfile.mkdtemp(prefix="bench-wsi-", dir=args.dir))
        try:
            inp = work / "in"
            inp.mkdir()
            slide = inp / "BenchPatient_MRN0000001.svs"
            t0 = time.perf_counter()
            generate(slide, args.gb)
            size = slide.stat().st_size
            inputs = f"a generated SVS-like BigTIFF of {size / (1 << 30):.2f} GiB, warm page cache"
            print(f"generated {size / (1 << 30):.2f} GiB in {time.perf_counter() - t0:.1f} s: {slide}",
                  file=sys.stderr, flush=True)
            # warm the page cache the same way for both
            with open(slide, "rb") as f:
                while f.read(64 << 20):
                    pass
            copy_s = plain_copy(slide, work / "copy.svs")
            (work / "copy.svs").unlink()
            edit_s, copy_nofsync = edit_only(inp, slide, work)
            no_verify = work / "no-verify.toml"
            no_verify.write_text("[run]\nverify = false\n")
            checked = medscrub_run(inp, work / "out", None)
            unchecked = medscrub_run(inp, work / "out", no_verify)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        rows = [
            benchlib.row("plain copy", "edit only, no fsync", copy_nofsync, "s", note="shutil.copyfile, best of 3"),
            benchlib.row("medscrub-wsi edit", "edit only, no fsync", edit_s, "s",
                         note="the plugin's streaming edit alone, best of 3"),
            benchlib.row("plain copy + fsync", "whole run", copy_s, "s"),
            run_rows("medscrub, leak check on", checked, copy_s),
            run_rows("medscrub, leak check off", unchecked, copy_s),
        ]
    benchlib.add_ratios(rows, {"edit only, no fsync": "plain copy", "whole run": "plain copy + fsync"})
    report = benchlib.report("wsi", rows, inputs=inputs, versions_=benchlib.versions("medscrub", "medscrub-wsi"),
                             size_gib=args.gb)
    benchlib.show(report)
    print(f"\nresults: {benchlib.save(report, args.json)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
