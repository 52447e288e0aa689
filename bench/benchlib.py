"""The report every bench_*.py writes with ``--json PATH``, and the one table
run_all.py builds from them.

A report is a JSON object::

    {"bench": "dicom", "schema": 1, "when": "...", "machine": {...},
     "versions": {"dicognito": "0.19.0", ...}, "inputs": "2000 files, 446 MB",
     "rows": [{"tool": "dicognito", "metric": "throughput", "value": 97.4,
               "unit": "files/s", "better": "higher", "reference": "medscrub-api",
               "ratio": 0.61, "workers": 1, "note": ""}, ...],
     "lines": ["lines printed under the table: targets, projections"]}

``ratio`` is the row's value divided by the value of its ``reference`` row
(the reference tool's row of the same bench and metric), so it reads the
same way as the value: for files/s above 1 is faster than the reference, for
seconds above 1 is slower.  A row whose tool is not installed or failed has
``value`` null and says why in ``note``.  A bench may add keys of its own to
a row or to the report; the table shows only the ones above.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SCHEMA = 1
RESULTS = Path(__file__).resolve().parent / "results"  # git-ignored
COLUMNS = ("bench", "tool", "workers", "metric", "value", "unit", "ratio", "reference", "note")


def row(tool: str, metric: str, value: float | None, unit: str, *, better: str | None = None,
        workers: int | None = None, note: str = "", **extra) -> dict:
    """One measurement; ``better`` defaults to "higher" for rates (``*/s``), else "lower"."""
    return {"tool": tool, "metric": metric, "value": value, "unit": unit,
            "better": better or ("higher" if unit.endswith("/s") else "lower"),
            "workers": workers, "note": note, **extra}


def not_installed(*modules: str) -> str:
    """"not installed: a, b" for the modules that cannot be imported, else ""."""
    gone = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"not installed: {', '.join(gone)}" if gone else ""


def add_ratios(rows: list[dict], references: dict[str, str]) -> None:
    """Give every row of a metric in ``references`` its ratio to that metric's reference tool."""
    for metric, tool in references.items():
        ref = next((r for r in rows if r["metric"] == metric and r["tool"] == tool), None)
        for r in rows:
            if r["metric"] != metric:
                continue
            r["reference"] = tool
            if ref is not None and ref["value"] and r["value"] is not None:
                r["ratio"] = r["value"] / ref["value"]


def versions(*dists: str) -> dict[str, str]:
    found = {}
    for dist in dists:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


def machine() -> dict:
    """What the numbers depend on, as far as Python can tell."""
    info: dict = {"python": platform.python_version(), "platform": platform.platform(),
                  "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, OSError, ValueError):  # not Linux
        pass
    return info


def report(bench: str, rows: list[dict], *, inputs: str = "", lines: list[str] | None = None,
           versions_: dict[str, str] | None = None, **extra) -> dict:
    return {"bench": bench, "schema": SCHEMA, "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(), "versions": versions_ or {}, "inputs": inputs, "rows": rows,
            "lines": lines or [], **extra}


def write_text(path: Path, text: str) -> None:
    """Write a file whole: to a temporary name first, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=1) + "\n")


def save(data: dict, path: Path | None = None) -> Path:
    """Write a report to ``path``, or else to bench/results/<bench>-<time>.json; where it went."""
    target = path or RESULTS / f"{data['bench']}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    write(target, data)
    return target


def show(data: dict) -> None:
    """Print one bench's part of the table, and its lines."""
    print(f"\n{data['bench']}: {data['inputs']}\n")
    print(text_table(merge([data])))
    for line in data["lines"]:
        print(line)


# -- the merged table ----------------------------------------------------------


def merge(reports: list[dict]) -> list[dict]:
    """The table's rows: every report's rows in order, each with its bench's name."""
    table = []
    for rep in reports:
        for r in rep.get("rows", []):
            table.append({"bench": rep["bench"], **{k: r.get(k) for k in COLUMNS if k != "bench"}})
    return table


def failed(bench: str, why: str) -> dict:
    """A report for a bench script that wrote none."""
    return {"bench": bench, "schema": SCHEMA, "failed": why, "inputs": "", "lines": [],
            "rows": [row("(bench failed)", "-", None, "-", note=why)]}


def show_value(value: float | None) -> str:
    if value is None:
        return "-"
    size = abs(value)
    return f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}" if size >= 1 \
        else f"{value:.3f}"


NOTE_WIDTH = 120  # the table's notes are cut here; the JSON has them whole


def cells(r: dict) -> list[str]:
    note = r["note"] or ""
    if len(note) > NOTE_WIDTH:
        note = note[:NOTE_WIDTH - 3] + "..."
    return [r["bench"], r["tool"], "-" if r["workers"] is None else str(r["workers"]), r["metric"],
            show_value(r["value"]), r["unit"], "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
            r["reference"] or "-", note]


def text_table(table: list[dict]) -> str:
    body = [cells(r) for r in table]
    widths = [max(len(c) for c in col) for col in zip(COLUMNS, *body, strict=True)]
    right = {2, 4, 6}  # workers, value, ratio

    def line(values) -> str:
        out = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(COLUMNS), rule, *(line(c) for c in body)])


def markdown_table(table: list[dict]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(esc(c) for c in cells(r)) + " |" for r in table]
    return "\n".join(out)


LEGEND = ("ratio: the value divided by the reference tool's value for the same metric (files/s: above 1 is "
          "faster than the reference; seconds: above 1 is slower). Compare ratios, not absolute values, "
          "across machines.")
