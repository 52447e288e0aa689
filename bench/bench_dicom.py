"""Throughput of medscrub-dicom against plain pydicom and three peers.

    python bench/bench_dicom.py [--files 2000] [--workers 1] [--tools ...]

Builds a corpus of copies of pydicom's CT, MR and US test files (every copy
with its own patient, study, series and instance UIDs), then runs each tool
over the same files in a fresh process, one after the other:

    pydicom            dcmread + save_as, nothing changed (the floor)
    medscrub-api       medscrub.pipeline.run_batch, the DICOM plugin, leak check on
    medscrub-cli       `medscrub run --workers N`, timed from outside (start-up included)
    dicognito          dicognito.anonymizer.Anonymizer().anonymize(ds) + save_as
    deid               deid.dicom.replace_identifiers with deid's default recipe
    dicom-anonymizer   dicomanonymizer.anonymize_dicom_file

Prints files/s per tool and ratios, and writes the numbers to
bench/results/dicom-<time>.json.  Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REFERENCE = "medscrub-api"
TOOLS = ("pydicom", "medscrub-api", "medscrub-cli", "dicognito", "deid", "dicom-anonymizer")
# (pydicom test file, share of the corpus): a 512x512 CT slice, a Siemens MR
# with private CSA headers and overlays, a JPEG 2000 ultrasound image.
TEMPLATES = (("693_UNCR.dcm", 0.45), ("MR-SIEMENS-DICOM-WithOverlays.dcm", 0.35), ("US1_J2KR.dcm", 0.20))
FILES_PER_SERIES = 40
SERIES_PER_PATIENT = 2
SECRET = b"medscrub-benchmark-secret-0123456789"


# -- the corpus --------------------------------------------------------------


def build_corpus(folder: Path, files: int) -> list[Path]:
    """``files`` DICOM files in series folders, each with distinct identities."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    templates = [(dcmread(get_testdata_file(name)), share) for name, share in TEMPLATES]
    counts = [int(files * share) for _, share in templates]
    counts[0] += files - sum(counts)
    written: list[Path] = []
    series_no = 0
    for (template, _), count in zip(templates, counts, strict=True):
        for start in range(0, count, FILES_PER_SERIES):
            patient = series_no // SERIES_PER_PATIENT
            study, series, frame = generate_uid(), generate_uid(), generate_uid()
            series_dir = folder / f"p{patient:04d}" / f"s{series_no:04d}"
            series_dir.mkdir(parents=True, exist_ok=True)
            for n in range(start, min(start + FILES_PER_SERIES, count)):
                ds = template
                ds.PatientName = f"Bench^Patient{patient:04d}"
                ds.PatientID = f"BENCH{patient:06d}"
                ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
                if "FrameOfReferenceUID" in ds:
                    ds.FrameOfReferenceUID = frame
                ds.SOPInstanceUID = generate_uid()
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.InstanceNumber = n - start + 1
                # unique base names: deid writes every output into one folder
                path = series_dir / f"im{len(written):06d}.dcm"
                ds.save_as(path, enforce_file_format=False)
                written.append(path)
            series_no += 1
    return written


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.dcm") if p.is_file())


def warm(files: list[Path]) -> None:
    """Read every input once so that no tool pays for a cold page cache."""
    for path in files:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


# -- one tool, in a child process ---------------------------------------------


def _mirror(src: Path, input_root: Path, output_root: Path) -> Path:
    out = output_root / src.relative_to(input_root)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def run_tool(tool: str, input_root: Path, output_root: Path, workers: int) -> dict:
    """Run one tool over every file; time only the work (imports and set-up excluded)."""
    warnings.simplefilter("ignore")
    files = corpus_files(input_root)
    if tool == "pydicom":
        from pydicom import dcmread

        start = time.perf_counter()
        for path in files:
            ds = dcmread(path)
            ds.save_as(_mirror(path, input_root, output_root), enforce_file_format=False)
        seconds = time.perf_counter() - start
    elif tool == "medscrub-api":
        from medscrub.context import RunConfig
        from medscrub.pipeline import run_batch
        from medscrub.pseudonyms import Secret

        config = RunConfig(None, Secret(SECRET, "bench"), input_root, output_root)
        start = time.perf_counter()
        run_batch(config, workers=workers)
        seconds = time.perf_counter() - start
    elif tool == "dicognito":
        from dicognito.anonymizer import Anonymizer
        from pydicom import dcmread

        anonymizer = Anonymizer()
        start = time.perf_counter()
        for path in files:
            ds = dcmread(path)
            anonymizer.anonymize(ds)
            ds.save_as(_mirror(path, input_root, output_root), enforce_file_format=False)
        seconds = time.perf_counter() - start
    elif tool == "deid":
        import logging

        from deid.config import DeidRecipe
        from deid.dicom import replace_identifiers
        from deid.logger import bot

        bot.level = logging.ERROR  # one warning per file otherwise
        recipe = DeidRecipe()
        output_root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        replace_identifiers(
            dicom_files=[str(p) for p in files], deid=recipe, save=True, output_folder=str(output_root), overwrite=True
        )
        seconds = time.perf_counter() - start
    elif tool == "dicom-anonymizer":
        from dicomanonymizer import anonymize_dicom_file

        start = time.perf_counter()
        for path in files:
            anonymize_dicom_file(str(path), str(_mirror(path, input_root, output_root)))
        seconds = time.perf_counter() - start
    else:
        raise SystemExit(f"unknown tool {tool!r}; use one of {', '.join(TOOLS)}")
    return {"seconds": seconds}


def not_done(output_root: Path) -> list[str]:
    """Items a medscrub run did not finish, with the reasons, from its manifest."""
    manifest = output_root / ".medscrub" / "manifest.jsonl"
    if not manifest.exists():
        return []
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [f"{r['id']}: {r['status']}: {r.get('reason')}" for r in records if r.get("status") != "done"]


def count_outputs(output_root: Path) -> int:
    return sum(1 for p in output_root.rglob("*.dcm") if p.is_file() and ".medscrub" not in p.parts)


def measure(tool: str, input_root: Path, work: Path, workers: int) -> dict:
    """Run ``tool`` in a fresh interpreter and return its row."""
    output_root = work / f"out-{tool}"
    shutil.rmtree(output_root, ignore_errors=True)
    row: dict = {"tool": tool, "workers": workers if tool.startswith("medscrub") else 1}
    if tool == "medscrub-cli":
        key = work / "secret.key"
        key.write_bytes(SECRET)
        exe = shutil.which("medscrub") or ""
        cmd = [exe, "run"] if exe else [sys.executable, "-c", "from medscrub.cli import main; main()", "run"]
        cmd += [str(input_root), str(output_root), "--workers", str(workers), "--secret-file", str(key), "--quiet"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        row["seconds"] = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            row["error"] = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", tool, "--input", str(input_root),
               "--output", str(output_root), "--workers", str(workers)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {**row, "error": tail[:200]}
        row.update(json.loads(lines[-1]))
    if tool.startswith("medscrub"):
        missed = not_done(output_root)
        row["errors"] = len(missed)
        row["not_done"] = missed[:5]
    row["files"] = count_outputs(output_root)
    row["files_per_s"] = row["files"] / row["seconds"] if row["seconds"] > 0 else 0.0
    shutil.rmtree(output_root, ignore_errors=True)
    return row


# -- the report ---------------------------------------------------------------


def add_ratios(rows: list[dict]) -> None:
    ref = next((r for r in rows if r["tool"] == REFERENCE and r.get("files_per_s")), None)
    for row in rows:
        if ref and row.get("files_per_s"):
            row["ratio_to_medscrub"] = row["files_per_s"] / ref["files_per_s"]


def targets(rows: list[dict]) -> list[str]:
    by = {r["tool"]: r for r in rows if r.get("files_per_s")}
    lines = []
    me = by.get(REFERENCE)
    if me and "dicognito" in by:
        x = me["files_per_s"] / by["dicognito"]["files_per_s"]
        lines.append(f"medscrub-api / dicognito = {x:.2f}x (target >= 2.0x): {'met' if x >= 2.0 else 'NOT met'}")
    if me and "pydicom" in by:
        x = me["files_per_s"] / by["pydicom"]["files_per_s"]
        lines.append(f"medscrub-api / pydicom read+write = {x:.2f}x (target >= 0.9x): {'met' if x >= 0.9 else 'NOT met'}")
    return lines


def table(rows: list[dict]) -> str:
    head = f"{'tool':<18} {'workers':>7} {'files':>6} {'seconds':>8} {'files/s':>9} {'vs medscrub':>11}  note"
    out = [head, "-" * len(head)]
    for r in rows:
        if "error" in r and not r.get("files_per_s"):
            out.append(f"{r['tool']:<18} {r.get('workers', 1):>7} {'-':>6} {'-':>8} {'-':>9} {'-':>11}  failed: {r['error']}")
            continue
        note = f"{r['errors']} item(s) not done" if r.get("errors") else ""
        ratio = f"{r['ratio_to_medscrub']:.2f}x" if "ratio_to_medscrub" in r else "-"
        out.append(
            f"{r['tool']:<18} {r['workers']:>7} {r['files']:>6} {r['seconds']:>8.2f} {r['files_per_s']:>9.1f}"
            f" {ratio:>11}  {note}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="files in the corpus (default 2000)")
    parser.add_argument("--workers", type=int, default=1, help="medscrub worker processes (peers run one process)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of: " + ", ".join(TOOLS))
    parser.add_argument("--corpus", type=Path, help="reuse (or build once into) this corpus folder")
    parser.add_argument("--json", type=Path, help="also write the results here (bench/run_all.py uses this)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_tool(args.child, args.input, args.output, args.workers)))
        return 0

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(unknown)}; use {', '.join(TOOLS)}")
    with tempfile.TemporaryDirectory(prefix="medscrub-bench-") as tmp:
        work = Path(tmp)
        corpus = args.corpus or work / "corpus"
        files = corpus_files(corpus) if corpus.exists() else []
        if len(files) != args.files:
            shutil.rmtree(corpus, ignore_errors=True)
            print(f"building {args.files} files in {corpus} ...", file=sys.stderr)
            files = build_corpus(corpus, args.files)
        size = sum(p.stat().st_size for p in files)
        warm(files)
        rows = []
        for tool in tools:
            print(f"running {tool} ...", file=sys.stderr)
            rows.append(measure(tool, corpus, work, args.workers))
    add_ratios(rows)
    report = {
        "bench": "dicom",
        "unit": "files",
        "reference": REFERENCE,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "corpus": {"files": len(files), "megabytes": round(size / 1e6, 1), "templates": [t for t, _ in TEMPLATES]},
        "versions": versions(),
        "rows": rows,
        "targets": targets(rows),
    }
    sys.stderr.flush()
    print(f"\nDICOM: {len(files)} files, {size / 1e6:.0f} MB, one process per tool unless noted\n")
    print(table(rows))
    for line in report["targets"]:
        print(line)
    for row in rows:
        for line in row.get("not_done", []):
            print(f"{row['tool']} did not finish {line}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"dicom-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    for target in filter(None, (path, args.json)):
        target.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nresults: {path}", flush=True)
    return 0


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("medscrub", "medscrub-dicom", "pydicom", "dicognito", "deid", "dicom-anonymizer"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


if __name__ == "__main__":
    sys.exit(main())
