"""Throughput of medscrub-dicom against plain pydicom and three peers.

    python bench/bench_dicom.py [--files 2000] [--workers 1,2] [--tools ...] [--json PATH]

Builds a corpus of copies of pydicom's CT, MR and US test files (every copy
with its own patient, study, series and instance UIDs), then runs each tool
over the same files in a fresh process, one after the other:

    pydicom            dcmread + save_as, nothing changed (the floor)
    medscrub-api       medscrub.pipeline.run_batch(workers=N), leak check on; N=1 is the reference
    medscrub-cli       `medscrub run --workers N`, timed from outside (start-up included)
    medscrub-dask      `medscrub run --executor dask --workers N`: a LocalCluster
    dicognito          dicognito.anonymizer.Anonymizer().anonymize(ds) + save_as
    deid               deid.dicom.replace_identifiers with deid's default recipe
    dicom-anonymizer   dicomanonymizer.anonymize_dicom_file

The three medscrub tools run once per count of ``--workers``.  Then it
times the parts of a run that only the client does (start-up, discovery,
grouping, one manifest line per item) and projects files/s for more workers
from them (see docs/scale.md).  A tool that is not installed shows as such.
Prints files/s per tool and ratios, and writes the report to ``--json PATH``
or else bench/results/dicom-<time>.json.  Not a test: numbers depend on the
machine.
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
import warnings
from pathlib import Path

import benchlib

HERE = Path(__file__).resolve().parent
REFERENCE = "medscrub-api"
TOOLS = ("pydicom", "medscrub-api", "medscrub-cli", "medscrub-dask", "dicognito", "deid", "dicom-anonymizer")
SCALED = ("medscrub-api", "medscrub-cli", "medscrub-dask")  # run once per --workers count
# what each tool imports: a missing one makes the row "not installed"
MODULES = {
    "pydicom": ("pydicom",), "medscrub-api": ("medscrub", "medscrub_dicom"),
    "medscrub-cli": ("medscrub", "medscrub_dicom"), "medscrub-dask": ("medscrub", "medscrub_dicom", "medscrub_dask"),
    "dicognito": ("dicognito",), "deid": ("deid",), "dicom-anonymizer": ("dicomanonymizer",),
}
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
    """Run one tool over every file, timing the work: the peers' imports and
    set-up are outside the clock; medscrub-api's run_batch is timed whole,
    with its own start (loading the plugins, about a second, and starting
    the workers) inside, which only makes medscrub's number smaller."""
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
        stamps: list[float] = []  # when each result reached the client

        def progress(result, total) -> None:
            if result is not None:
                stamps.append(time.perf_counter())

        start = time.perf_counter()
        run_batch(config, workers=workers, progress=progress)
        seconds = time.perf_counter() - start
        # the rate once results flow: discovery and the pool's start left out
        steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 2 and stamps[-1] > stamps[0] else None
        return {"seconds": seconds, "first_result_s": stamps[0] - start if stamps else None,
                "steady_files_per_s": steady}
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


def run_client_parts(input_root: Path, output_root: Path, sample: Path) -> dict:
    """Time what only the client of a run does: build the run context, discover
    and group the items, and write one manifest line per item (the lines of a
    real run's manifest, ``sample``, written again into a fresh manifest)."""
    from dataclasses import fields

    from medscrub.context import RunConfig, RunContext
    from medscrub.manifest import Manifest
    from medscrub.model import Item, ItemResult
    from medscrub.pipeline import discover, group_items
    from medscrub.pseudonyms import Secret

    config = RunConfig(None, Secret(SECRET, "bench"), input_root.absolute(), output_root.absolute())
    start = time.perf_counter()
    context = RunContext(config)
    context_s = time.perf_counter() - start
    start = time.perf_counter()
    items = [found for found in discover(context) if isinstance(found, Item)]
    discover_s = time.perf_counter() - start
    start = time.perf_counter()
    units = group_items(items, context)
    group_s = time.perf_counter() - start
    known = {f.name for f in fields(ItemResult)}
    lines = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = [ItemResult(**{k: v for k, v in record.items() if k in known}) for record in lines]
    manifest = Manifest(output_root)
    start = time.perf_counter()
    manifest.open({"recipe_sha256": "bench", "secret": "bench"})
    for result in results:
        manifest.append(result)
    manifest.close()
    manifest_s = time.perf_counter() - start
    return {"context_s": context_s, "discover_s": discover_s, "group_s": group_s, "items": len(items),
            "units": len(units), "manifest_s": manifest_s, "manifest_lines": len(results)}


def not_done(output_root: Path) -> list[str]:
    """Items a medscrub run did not finish, with the reasons, from its manifest."""
    manifest = output_root / ".medscrub" / "manifest.jsonl"
    if not manifest.exists():
        return []
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [f"{r['id']}: {r['status']}: {r.get('reason')}" for r in records if r.get("status") != "done"]


def count_outputs(output_root: Path) -> int:
    return sum(1 for p in output_root.rglob("*.dcm") if p.is_file() and ".medscrub" not in p.parts)


def medscrub_command(input_root: Path, output_root: Path, work: Path, workers: int, executor: str) -> list[str]:
    key = work / "secret.key"
    key.write_bytes(SECRET)
    exe = shutil.which("medscrub")
    cmd = [exe, "run"] if exe else [sys.executable, "-c", "from medscrub.cli import main; main()", "run"]
    return cmd + [str(input_root), str(output_root), "--workers", str(workers), "--executor", executor,
                  "--secret-file", str(key), "--quiet"]


def child(tool: str, input_root: Path, output_root: Path, workers: int, *extra: str) -> dict:
    """Run ``tool`` in this script's child mode, in a fresh interpreter; its JSON line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", tool, "--input", str(input_root),
           "--output", str(output_root), "--workers", str(workers), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def measure(tool: str, input_root: Path, work: Path, workers: int) -> dict:
    """Run ``tool`` over the corpus in a fresh process and return its row.

    The first medscrub run's manifest is kept as ``work/manifest-sample.jsonl``
    for :func:`run_client_parts`."""
    output_root = work / f"out-{tool}"
    shutil.rmtree(output_root, ignore_errors=True)
    workers = workers if tool in SCALED else 1
    missing = benchlib.not_installed(*MODULES[tool])
    if missing:
        return benchlib.row(tool, "throughput", None, "files/s", workers=workers, note=missing)
    got: dict = {}
    if tool in ("medscrub-cli", "medscrub-dask"):
        executor = "dask" if tool == "medscrub-dask" else "local"
        start = time.perf_counter()
        proc = subprocess.run(medscrub_command(input_root, output_root, work, workers, executor),
                              capture_output=True, text=True)
        got["seconds"] = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            got["error"] = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]
    else:
        got = child(tool, input_root, output_root, workers)
    files = count_outputs(output_root)
    if tool.startswith("medscrub"):
        missed = not_done(output_root)
        got.update(errors=len(missed), not_done=missed[:5])
        sample = output_root / ".medscrub" / "manifest.jsonl"
        if sample.exists() and not (work / "manifest-sample.jsonl").exists():
            shutil.copyfile(sample, work / "manifest-sample.jsonl")
    shutil.rmtree(output_root, ignore_errors=True)
    if "error" in got:
        return benchlib.row(tool, "throughput", None, "files/s", workers=workers, note=f"failed: {got['error']}")
    rate = files / got["seconds"] if got["seconds"] > 0 else 0.0
    note = f"{got['errors']} item(s) not done" if got.get("errors") else ""
    if tool == "medscrub-cli":
        note = note or "whole process, start-up included"
    elif tool == "medscrub-dask":
        note = note or "whole process, LocalCluster start included"
    return benchlib.row(tool, "throughput", rate, "files/s", workers=workers, note=note,
                        files=files, files_per_s=rate, **got)


def client_parts(input_root: Path, work: Path) -> dict:
    """The client's own costs: start-up (a whole ``medscrub run`` of an empty
    folder), and discovery, grouping and manifest lines (timed in a child)."""
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    out = work / "out-empty"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run(medscrub_command(empty, out, work, 1, "local"), capture_output=True, text=True)
    startup = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]}
    sample = work / "manifest-sample.jsonl"
    if not sample.exists():
        return {"error": "no medscrub run left a manifest to time"}
    parts = child("client", input_root, work / "out-client", 1, "--sample", str(sample))
    shutil.rmtree(work / "out-client", ignore_errors=True)
    return {"startup_s": startup, **parts}


# -- the projection -----------------------------------------------------------

PROJECT_FILES = 1_000_000  # an archive
PROJECT_WORKERS = (1, 2, 8, 32, 128, 512)


def project(rows: list[dict], client: dict, megabytes_per_file: float) -> dict | None:
    """Files/s for more workers, from the steady rates of the API runs (1 worker
    and more) and the client's serial parts (the method is in docs/scale.md)."""
    steady = {r["workers"]: r.get("steady_files_per_s") for r in rows if r["tool"] == "medscrub-api"}
    counts = sorted(w for w in steady if w >= 2 and steady[w])
    if not steady.get(1) or not counts or not client or "error" in client or not client.get("items"):
        return None
    fixed = client["startup_s"]  # once per run
    per_file_serial = (client["discover_s"] + client["group_s"]) / client["items"]  # before any item runs
    per_file_manifest = client["manifest_s"] / max(client["manifest_lines"], 1)  # while the workers work
    rate = steady[1]  # one worker's files/s
    # the share of that rate each of k workers keeps on one node; the largest k stands for a node
    efficiency = {w: steady[w] / (w * rate) for w in counts}
    used = min(efficiency[counts[-1]], 1.0)
    # starting the worker processes: how much later the first result came than with one worker
    first = {r["workers"]: r.get("first_result_s") for r in rows if r["tool"] == "medscrub-api"}
    pool_start = max(0.0, first[counts[-1]] - first[1]) if first.get(1) and first.get(counts[-1]) else 0.0

    def files_per_s(workers: int, n: int) -> float:
        work = rate if workers == 1 else workers * rate * min(efficiency.get(workers, used), 1.0)
        start = fixed if workers == 1 else fixed + pool_start
        return n / (start + per_file_serial * n + max(n / work, per_file_manifest * n))

    cli = {r["workers"]: r["value"] for r in rows if r["tool"] == "medscrub-cli" and r["value"]}
    files = next((r["files"] for r in rows if r["tool"] == "medscrub-api" and r.get("files")), 0)
    return {
        "measured": {"startup_s": fixed, "pool_start_s": pool_start,
                     "discovery_and_grouping_ms_per_file": 1e3 * per_file_serial,
                     "manifest_ms_per_item": 1e3 * per_file_manifest, "worker_files_per_s": rate,
                     "efficiency": efficiency, "efficiency_used": used},
        "check": [{"workers": w, "files": files, "model_files_per_s": files_per_s(w, files),
                   "cli_files_per_s": cli[w]} for w in sorted(cli) if files],
        "archive_files": PROJECT_FILES,
        "rows": [{"workers": w, "files_per_s": files_per_s(w, PROJECT_FILES),
                  "hours": PROJECT_FILES / files_per_s(w, PROJECT_FILES) / 3600,
                  "filesystem_mb_per_s": 2 * megabytes_per_file * files_per_s(w, PROJECT_FILES)}
                 for w in PROJECT_WORKERS],
        "ceiling_files_per_s": 1 / (per_file_serial + per_file_manifest),
    }


def projection_lines(p: dict | None) -> list[str]:
    if p is None:
        return ["projection: needs medscrub-api with --workers 1 and 2 or more, and medscrub-cli for the client's parts"]
    m = p["measured"]
    shares = ", ".join(f"{w} workers {e:.2f}" for w, e in m["efficiency"].items())
    lines = [
        f"measured: one worker {m['worker_files_per_s']:.1f} files/s once results flow; efficiency {shares}; "
        f"client start-up {m['startup_s']:.2f} s, pool start {m['pool_start_s']:.2f} s, discovery + grouping "
        f"{m['discovery_and_grouping_ms_per_file']:.3f} ms/file, manifest {m['manifest_ms_per_item']:.3f} ms/item",
    ]
    lines += [f"model check, this corpus, {c['workers']} worker(s): model {c['model_files_per_s']:.1f} files/s, "
              f"medscrub-cli measured {c['cli_files_per_s']:.1f}" for c in p["check"]]
    lines.append(f"PROJECTED, not measured (docs/scale.md), {p['archive_files']:,} files like these:")
    for r in p["rows"]:
        lines.append(f"  {r['workers']:>4} workers: {r['files_per_s']:>9.0f} files/s, {r['hours']:>7.2f} h, "
                     f"file system {r['filesystem_mb_per_s']:>8.0f} MB/s read + write")
    lines.append(f"  ceiling, the client's serial work (discovery + manifest): {p['ceiling_files_per_s']:.0f} files/s")
    return lines


# -- the report ---------------------------------------------------------------


def targets(rows: list[dict]) -> list[str]:
    by = {r["tool"]: r for r in rows if r["value"] and r["workers"] == 1}
    lines = []
    me = by.get(REFERENCE)
    if me and "dicognito" in by:
        x = me["value"] / by["dicognito"]["value"]
        lines.append(f"medscrub-api / dicognito = {x:.2f}x (target >= 2.0x): {'met' if x >= 2.0 else 'NOT met'}")
    if me and "pydicom" in by:
        x = me["value"] / by["pydicom"]["value"]
        lines.append(f"medscrub-api / pydicom read+write = {x:.2f}x (target >= 0.9x): {'met' if x >= 0.9 else 'NOT met'}")
    return lines


def median_row(found: list[dict]) -> dict:
    """The run with the median files/s of a tool's rounds (a failed run, if any)."""
    failed = [r for r in found if r["value"] is None]
    if failed:
        return failed[0]
    ordered = sorted(found, key=lambda r: r["value"])
    row = ordered[len(ordered) // 2]
    if len(found) > 1:
        spread = ", ".join(f"{r['value']:.0f}" for r in ordered)
        row["note"] = "; ".join(filter(None, [row.get("note"), f"median of {len(found)} rounds ({spread})"]))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="files in the corpus (default 2000)")
    parser.add_argument("--workers", default="1,2",
                        help="worker counts for the medscrub runs, comma-separated (default 1,2); "
                             "the other tools run one process")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of: " + ", ".join(TOOLS))
    parser.add_argument("--rounds", type=int, default=3,
                        help="run every tool this many times, interleaved, and report each tool's median "
                             "(default 3; one run per tool swings by a quarter on a small machine)")
    parser.add_argument("--corpus", type=Path, help="reuse (or build once into) this corpus folder")
    parser.add_argument("--json", type=Path, help="also write the report here (bench/run_all.py uses this)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "client":
        print(json.dumps(run_client_parts(args.input, args.output, args.sample)))
        return 0
    if args.child:
        print(json.dumps(run_tool(args.child, args.input, args.output, int(args.workers))))
        return 0

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(unknown)}; use {', '.join(TOOLS)}")
    try:
        counts = sorted({int(n) for n in args.workers.split(",") if n.strip()})
    except ValueError:
        parser.error(f"--workers takes whole numbers separated by commas, not {args.workers!r}")
    if not counts or min(counts) < 1:
        parser.error("--workers needs at least one count of 1 or more")
    if benchlib.not_installed("pydicom"):
        parser.error("pydicom is needed to build the corpus")
    client: dict = {}
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
        runs: dict[tuple[str, int], list[dict]] = {}
        for n in range(max(1, args.rounds)):
            for tool in tools:
                for workers in counts if tool in SCALED else [1]:
                    print(f"running {tool} ({workers} worker(s)), round {n + 1} ...", file=sys.stderr, flush=True)
                    os.sync()  # the previous tool's writes are not left for this one to wait on
                    runs.setdefault((tool, workers), []).append(measure(tool, corpus, work, workers))
        rows = [median_row(found) for found in runs.values()]
        if "medscrub-cli" in tools and not benchlib.not_installed(*MODULES["medscrub-cli"]):
            print("timing the client's serial parts ...", file=sys.stderr, flush=True)
            client = client_parts(corpus, work)
    benchlib.add_ratios(rows, {"throughput": REFERENCE})
    projection = project(rows, client, size / 1e6 / max(len(files), 1)) if client else None
    inputs = f"{len(files)} DICOM files, {size / 1e6:.0f} MB (CT, MR with CSA headers, JPEG 2000 US)"
    report = benchlib.report(
        "dicom", rows, inputs=inputs, lines=targets(rows) + projection_lines(projection),
        versions_=benchlib.versions("medscrub", "medscrub-dicom", "medscrub-dask", "pydicom", "dicognito", "deid",
                                    "dicom-anonymizer", "dask"),
        corpus={"files": len(files), "megabytes": round(size / 1e6, 1), "templates": [t for t, _ in TEMPLATES]},
        client=client, projection=projection,
    )
    sys.stderr.flush()
    benchlib.show(report)
    for r in rows:
        for line in r.get("not_done", []):
            print(f"{r['tool']} did not finish {line}")
    print(f"\nresults: {benchlib.save(report, args.json)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
