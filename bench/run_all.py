"""Run every benchmark in bench/ and print one table of throughput and ratios.

    python bench/run_all.py [--only dicom,twix] [--args "dicom:--files 500"] [--smoke]

Each ``bench/bench_<name>.py`` runs in its own interpreter, one after the
other (they would compete for the cores otherwise), with ``--json PATH``; the
rows it writes there (see bench/benchlib.py) are merged into one table,
printed on stdout and written as JSON and Markdown to
bench/results/run_all-<time>.{json,md}.  The benches' own output goes to
stderr as they run.  Nothing is installed: a peer that is missing shows as
"not installed", and a bench that writes no report shows as failed with the
last line it printed.

``--smoke`` gives every bench tiny inputs, to check the harness in a minute or
two; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import benchlib

HERE = Path(__file__).resolve().parent
ORDER = ("dicom", "deface", "wsi", "twix", "ocr")  # then any other bench_*.py, by name
SMOKE = {
    "dicom": ["--files", "100", "--rounds", "1"],
    "deface": ["--volumes", "ch2", "--tasks", "deface"],
    "wsi": ["--gb", "0.05"],
    "twix": ["--size", "0.05"],
    "ocr": ["--frames", "2"],
}


def scripts(only: set[str] | None, folder: Path = HERE) -> list[Path]:
    found = {p.stem.removeprefix("bench_"): p for p in folder.glob("bench_*.py")}
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    return [found[n] for n in names if only is None or n in only]


def run_script(script: Path, extra: list[str]) -> dict:
    """Run one bench script with ``--json``; its report, or a failed one with
    the last line it printed.  Its output is passed on to stderr as it comes."""
    name = script.stem.removeprefix("bench_")
    tail: collections.deque[str] = collections.deque(maxlen=1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        target = Path(tmp) / "report.json"
        with subprocess.Popen([sys.executable, str(script), *extra, "--json", str(target)], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stderr.write(line)
                if line.strip():
                    tail.append(line.strip())
        seconds = time.perf_counter() - started
        if proc.returncode == 0 and target.exists():
            report = json.loads(target.read_text(encoding="utf-8"))
        else:
            why = f"exit {proc.returncode}" + (f": {tail[-1][:200]}" if tail else "")
            report = benchlib.failed(name, why)
    report["duration_s"] = round(seconds, 1)
    return report


def parse_extra(specs: list[str], smoke: bool) -> dict[str, list[str]]:
    """Extra arguments per bench: the smoke sizes first, then ``--args`` (the last one wins)."""
    extra: dict[str, list[str]] = {name: list(args) for name, args in SMOKE.items()} if smoke else {}
    for spec in specs:
        name, sep, rest = spec.partition(":")
        if not sep:
            raise ValueError(f"--args takes NAME:ARGS, not {spec!r}")
        extra.setdefault(name.strip(), []).extend(shlex.split(rest))
    return extra


def summary(reports: list[dict]) -> tuple[list[dict], list[str]]:
    """The merged table, and the lines under it: each bench's lines, then what it ran on."""
    table = benchlib.merge(reports)
    lines = []
    for rep in reports:
        lines += [f"{rep['bench']}: {line}" for line in rep.get("lines", [])]
    for rep in reports:
        took = f", {rep['duration_s']:.0f} s" if "duration_s" in rep else ""
        lines.append(f"{rep['bench']} inputs: {rep.get('inputs') or '-'}{took}")
    return table, lines


def machine_line(info: dict) -> str:
    load = info.get("load_average")
    return (f"machine: {info.get('processor')}, {info.get('usable_cpus', info.get('cpus'))} CPUs, "
            f"{info.get('memory_gib', '?')} GiB, Python {info.get('python')}, {info.get('platform')}"
            + (f", load average {load[0]} when started" if load else ""))


def markdown(when: str, machine: str, table: list[dict], lines: list[str], command: str) -> str:
    out = [f"# Benchmarks, {when}", "", f"`{command}`", "", machine, "", benchlib.markdown_table(table), "",
           benchlib.LEGEND, ""]
    out += [f"    {line}" for line in lines]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated bench names (the part after bench_), e.g. dicom,twix")
    parser.add_argument("--args", action="append", default=[], metavar="NAME:ARGS",
                        help='extra arguments for one bench, e.g. "dicom:--files 500" (repeatable)')
    parser.add_argument("--smoke", action="store_true",
                        help="tiny inputs for every bench: checks the harness, the numbers mean nothing")
    parser.add_argument("--out", type=Path, default=benchlib.RESULTS,
                        help="where the merged JSON and Markdown go (default bench/results)")
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",") if n.strip()} if args.only else None
    try:
        extra = parse_extra(args.args, args.smoke)
    except ValueError as e:
        parser.error(str(e))
    found = scripts(only)
    if not found:
        parser.error("no bench_*.py to run" + (f" named {', '.join(sorted(only))}" if only else ""))

    machine = benchlib.machine()
    when = datetime.now(UTC).isoformat(timespec="seconds")
    reports = []
    for script in found:
        name = script.stem.removeprefix("bench_")
        print(f"== {script.name} {shlex.join(extra.get(name, []))}", file=sys.stderr, flush=True)
        reports.append(run_script(script, extra.get(name, [])))
    table, lines = summary(reports)

    print("\n" + ("SMOKE RUN: tiny inputs, the numbers mean nothing\n" if args.smoke else ""))
    print(benchlib.text_table(table))
    print("\n" + benchlib.LEGEND)
    for line in lines:
        print(line)
    print(machine_line(machine))
    command = shlex.join(["python", "bench/run_all.py", *(argv if argv is not None else sys.argv[1:])])
    stem = args.out / f"run_all-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    benchlib.write(stem.with_suffix(".json"), {"when": when, "command": command, "smoke": args.smoke,
                                               "machine": machine, "table": table, "lines": lines,
                                               "reports": reports})
    benchlib.write_text(stem.with_suffix(".md"), markdown(when, machine_line(machine), table, lines, command))
    print(f"\nresults: {stem}.json, {stem}.md")
    return 1 if any("failed" in r for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
