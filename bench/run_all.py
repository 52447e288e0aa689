"""Run every benchmark in bench/ and print one table of throughput and ratios.

    python bench/run_all.py [--only dicom,twix] [--args "dicom:--files 500"]

Each ``bench/bench_<name>.py`` runs in its own interpreter, one after the
other (they would compete for the cores otherwise).  It installs nothing:
a peer that is not installed shows as failed in its script's table.

The contract a bench script keeps (see bench/README.md): it accepts
``--json PATH`` and writes there

    {"bench": "<name>", "unit": "files", "reference": "<tool the ratios use>",
     "rows": [{"tool": ..., "files": n, "seconds": s, "files_per_s": r, ...}]}

(``unit`` may be another word, such as "scans"; the count and rate keys are
then ``<unit>`` and ``<unit>_per_s``).  A script without ``--json`` is run
without it, and its newest ``bench/results/<name>*.json`` is read instead.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def scripts(only: set[str] | None) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    return [p for p in found if only is None or p.stem.removeprefix("bench_") in only]


def run_script(script: Path, extra: list[str]) -> tuple[dict | None, str]:
    """Run one bench script; its report and a line on what happened."""
    name = script.stem.removeprefix("bench_")
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "report.json"
        cmd = [sys.executable, str(script), *extra]
        accepts_json = "--json" in script.read_text(encoding="utf-8")
        proc = subprocess.run([*cmd, "--json", str(target)] if accepts_json else cmd, text=True)
        if target.exists():
            return json.loads(target.read_text(encoding="utf-8")), f"exit {proc.returncode}"
    # No --json: the newest results file this run left.
    newest = sorted(
        (p for p in RESULTS.glob(f"{name}*.json") if p.stat().st_mtime >= started),
        key=lambda p: p.stat().st_mtime,
    )
    if newest:
        return json.loads(newest[-1].read_text(encoding="utf-8")), f"exit {proc.returncode}, read {newest[-1].name}"
    return None, f"exit {proc.returncode}, no results"


def rows_of(report: dict, bench: str) -> list[tuple]:
    unit = report.get("unit", "files")
    out = []
    for row in report.get("rows", []):
        count = row.get(unit, row.get("files", row.get("items")))
        rate = row.get(f"{unit}_per_s", row.get("files_per_s", row.get("items_per_s")))
        ratio = next((v for k, v in row.items() if k.startswith("ratio_to")), None)
        note = row.get("error", "")
        if row.get("errors"):
            note = f"{row['errors']} not done"
        out.append((report.get("bench", bench), row.get("tool", "?"), row.get("workers", 1), unit, count,
                    row.get("seconds"), rate, ratio, note))
    return out


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every bench/bench_*.py and print one table.")
    parser.add_argument("--only", help="comma-separated bench names (the part after bench_)")
    parser.add_argument("--args", action="append", default=[], metavar="NAME:ARGS",
                        help='extra arguments for one bench, e.g. "dicom:--files 500" (repeatable)')
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",")} if args.only else None
    extra: dict[str, list[str]] = {}
    for spec in args.args:
        name, _, rest = spec.partition(":")
        extra.setdefault(name.strip(), []).extend(shlex.split(rest))

    found = scripts(only)
    if not found:
        print("no bench_*.py to run", file=sys.stderr)
        return 2
    table, notes, targets = [], [], []
    for script in found:
        name = script.stem.removeprefix("bench_")
        print(f"== {script.name}", file=sys.stderr, flush=True)
        report, how = run_script(script, extra.get(name, []))
        notes.append(f"{script.name}: {how}")
        if report is None:
            table.append((name, "(no results)", "-", "-", None, None, None, None, how))
            continue
        table += rows_of(report, name)
        targets += [f"{name}: {t}" for t in report.get("targets", [])]

    head = f"{'bench':<8} {'tool':<18} {'workers':>7} {'unit':<6} {'count':>6} {'seconds':>8} {'per s':>9} {'ratio':>7}  note"
    print("\n" + head)
    print("-" * len(head))
    for bench, tool, workers, unit, count, seconds, rate, ratio, note in table:
        print(f"{bench:<8} {tool:<18} {workers!s:>7} {unit:<6} {fmt(count, 'd'):>6} {fmt(seconds, '.2f'):>8}"
              f" {fmt(rate, '.1f'):>9} {fmt(ratio, '.2f'):>7}  {note}")
    print("\nratio: the tool's rate divided by its bench's reference (medscrub) rate")
    for line in targets + notes:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
