"""Burned-in text: medscrub-ocr against presidio-image-redactor's DICOM redactor.

    python bench/bench_ocr.py [--frames 30] [--tools medscrub,medscrub-tesseract,presidio] [--json PATH]

Renders the synthetic frames of medscrub_ocr.synthetic (800 x 600, random
names, dates and IDs in varied fonts and sizes over speckle and a fan; seeds
0..N-1), gives each tool the same frames, and measures:

    recall       planted strings of which at least 98 % of the ink was painted over
    s/frame      wall-clock seconds per frame (CPU seconds in brackets)
    anatomy      share of fan pixels changed, planted strings on the fan left out

Tools:

    medscrub            medscrub_ocr.detect.find_text, PP-OCR via onnxruntime, the defaults,
                        one process using every core (as `medscrub run --workers 1`)
    medscrub-workers    the same, frames shared among --workers processes (as
                        `medscrub run --workers N` does); s/frame with the pool's
                        start and model loading, and without them
    medscrub-tesseract  the same strategy with the tesseract engine
    presidio            presidio_image_redactor.DicomImageRedactorEngine().redact(ds,
                        use_metadata=True), the frame as a DICOM US image whose
                        PatientName and PatientID hold planted strings

presidio's default analyzer loads spaCy's en_core_web_lg and downloads it
when missing; offline that fails, and the benchmark says so.  It then runs
presidio a second time as "presidio-blank": the analyzer with an empty
English spaCy pipeline from disk (no named-entity model, so only its pattern
recognisers and the DICOM metadata find PHI).  Those numbers are presidio
without its NER and are labelled so.

Writes ``--json PATH`` or else bench/results/ocr-<time>.json: seconds per
frame and recall per tool, with ratios to medscrub's.  A tool that is
not installed shows as such.  Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import tempfile
import time
import traceback
from pathlib import Path

import benchlib
import numpy as np

HERE = Path(__file__).resolve().parent
TOOLS = ("medscrub", "medscrub-workers", "medscrub-tesseract", "presidio")


def frames(n: int):
    from medscrub_ocr.synthetic import render

    return [render(seed) for seed in range(n)]


def score(frame, cleaned: np.ndarray) -> tuple[int, int]:
    from medscrub_ocr.synthetic import erased_fraction

    changed = np.any(frame.pixels != cleaned, axis=2)
    return sum(erased_fraction(p, changed) >= 0.98 for p in frame.planted), len(frame.planted)


def run_medscrub(frames_, engine_name: str):
    from medscrub.context import available_cores
    from medscrub_ocr.detect import Strategy, find_text
    from medscrub_ocr.engines import DetectorSettings, get_engine
    from medscrub_ocr.fill import fill

    # as `medscrub run --workers 1` runs it: the one worker has every core (context.cores)
    engine = get_engine(engine_name, None, DetectorSettings(threads=available_cores()))
    strategy = Strategy(dilation=2)
    engine.detect(frames_[0].pixels[:64, :64])  # load the network before timing
    out = []
    for frame in frames_:
        pixels = frame.pixels.copy()
        fill(pixels, find_text(pixels, engine, strategy), "black")
        out.append(pixels)
    return out


def _clean_chunk(pixels: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Clean frames in a worker; the seconds spent after the network loaded."""
    from medscrub_ocr.detect import Strategy, find_text
    from medscrub_ocr.engines import DetectorSettings, get_engine
    from medscrub_ocr.fill import fill

    # as `medscrub run --workers N` on N cores runs it: one core each
    engine = get_engine("rapidocr", None, DetectorSettings(threads=1))
    engine.detect(pixels[0][:64, :64])
    start = time.perf_counter()
    out = []
    for frame in pixels:
        cleaned = frame.copy()
        fill(cleaned, find_text(cleaned, engine, Strategy(dilation=2)), "black")
        out.append(cleaned)
    return out, time.perf_counter() - start


def run_medscrub_workers(frames_, workers: int, busy: list[float]):
    from concurrent.futures import ProcessPoolExecutor

    order = list(range(len(frames_)))
    chunks = [order[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_clean_chunk, [[frames_[i].pixels for i in chunk] for chunk in chunks]))
    out: list[np.ndarray | None] = [None] * len(frames_)
    for chunk, (cleaned, seconds) in zip(chunks, parts, strict=True):
        busy.append(seconds)
        for i, pixels in zip(chunk, cleaned, strict=True):
            out[i] = pixels
    return out


def as_dicom(frame, seed: int):
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(seed)])
    ds.Modality = "US"
    names = [p.text for p in frame.planted if p.kind == "name"]
    ids = [p.text for p in frame.planted if p.kind == "id"]
    ds.PatientName = names[0] if names else "Doe^Jane"
    ds.PatientID = ids[0] if ids else "000000"
    ds.set_pixel_data(frame.pixels, "RGB", 8, generate_instance_uid=False)
    return ds


def presidio_engine(blank: bool):
    from presidio_image_redactor import DicomImageRedactorEngine

    if not blank:
        return DicomImageRedactorEngine()
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_image_redactor import ImageAnalyzerEngine

    folder = Path(tempfile.mkdtemp(prefix="blank-en-"))
    spacy.blank("en").to_disk(folder)
    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": str(folder)}]}).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    return DicomImageRedactorEngine(image_analyzer_engine=ImageAnalyzerEngine(analyzer_engine=analyzer))


def spacy_model_installed() -> bool:
    """Whether the spaCy model presidio's default analyzer needs is installed."""
    return importlib.util.find_spec("en_core_web_lg") is not None


def run_presidio(frames_, blank: bool):
    engine = presidio_engine(blank)
    out = []
    for i, frame in enumerate(frames_):
        ds = as_dicom(frame, i)
        redacted = engine.redact(ds, fill="contrast", use_metadata=True)
        out.append(np.asarray(redacted.pixel_array))
    return out


def measure(name: str, run, frames_) -> dict:
    from medscrub_ocr.synthetic import anatomy_change

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        cleaned = run(frames_)
    except BaseException as e:  # a peer that cannot run is reported, not faked
        if isinstance(e, KeyboardInterrupt):
            raise
        line = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        return {"tool": name, "ran": False, "reason": line, "trace": traceback.format_exc(limit=3)[-800:]}
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    found = total = 0
    for frame, pixels in zip(frames_, cleaned, strict=True):
        f, t = score(frame, pixels)
        found, total = found + f, total + t
    anatomy = [anatomy_change(frame, pixels) for frame, pixels in zip(frames_, cleaned, strict=True)]
    return {
        "tool": name, "ran": True, "frames": len(frames_), "found": found, "planted": total,
        "recall": round(found / total, 4), "seconds_per_frame": round(wall / len(frames_), 3),
        "cpu_seconds_per_frame": round(cpu / len(frames_), 3),
        "anatomy_changed_mean": round(float(np.mean(anatomy)), 4), "anatomy_changed_max": round(max(anatomy), 4),
    }


def table_rows(r: dict) -> list[dict]:
    """The two rows of one tool's result: seconds per frame and recall."""
    if not r["ran"]:
        note = r["reason"] if r["reason"].startswith("not installed") else f"did not run: {r['reason']}"
        return [benchlib.row(r["tool"], metric, None, unit, note=note)
                for metric, unit in (("time", "s/frame"), ("recall", "share"))]
    loaded = r.get("seconds_per_frame_loaded")
    note = f"{r['cpu_seconds_per_frame']:.3f} CPU s/frame" + (f"; {loaded:.3f} s/frame once started" if loaded else "")
    return [benchlib.row(r["tool"], "time", r["seconds_per_frame"], "s/frame", note=note),
            benchlib.row(r["tool"], "recall", r["recall"], "share", better="higher",
                         note=f"{r['found']}/{r['planted']} strings; anatomy changed mean "
                              f"{r['anatomy_changed_mean']:.4f}, max {r['anatomy_changed_max']:.4f}")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="also write the report here (bench/run_all.py uses this)")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(unknown)}; use {', '.join(TOOLS)}")
    ours = benchlib.not_installed("medscrub_ocr")  # it also renders the frames
    frames_ = [] if ours else frames(args.frames)
    results = []
    for tool in tools:
        name = f"medscrub-{args.workers}-workers" if tool == "medscrub-workers" else tool
        missing = ours or (benchlib.not_installed("presidio_image_redactor") if tool == "presidio" else "")
        if missing:
            results.append({"tool": name, "ran": False, "reason": missing})
        elif tool == "medscrub":
            results.append(measure(tool, lambda f: run_medscrub(f, "rapidocr"), frames_))
        elif tool == "medscrub-workers":
            busy: list[float] = []
            results.append(measure(name, lambda f, busy=busy: run_medscrub_workers(f, args.workers, busy), frames_))
            if busy:  # the pool's start and the network loading left out
                results[-1]["seconds_per_frame_loaded"] = round(max(busy) / args.frames, 3)
        elif tool == "medscrub-tesseract":
            results.append(measure(tool, lambda f: run_medscrub(f, "tesseract"), frames_))
        elif tool == "presidio":
            results.append(measure("presidio", lambda f: run_presidio(f, False), frames_))
            if not results[-1]["ran"] and not spacy_model_installed():
                results[-1]["reason"] = f"no spaCy en_core_web_lg here, and fetching it failed: {results[-1]['reason']}"
            if not results[-1]["ran"]:
                results.append(measure("presidio-blank", lambda f: run_presidio(f, True), frames_))
    inputs = f"{args.frames} synthetic frames of 800 x 600 with planted text"
    print(f"{inputs}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    for r in results:
        if r["ran"]:
            loaded = r.get("seconds_per_frame_loaded")
            print(f"{r['tool']:20s} recall {r['recall']:.3f} ({r['found']}/{r['planted']})  "
                  f"{r['seconds_per_frame']:.3f} s/frame ({r['cpu_seconds_per_frame']:.3f} CPU s"
                  f"{f'; {loaded:.3f} s/frame once started' if loaded else ''})  "
                  f"anatomy changed mean {r['anatomy_changed_mean']:.4f} max {r['anatomy_changed_max']:.4f}")
        else:
            print(f"{r['tool']:20s} did not run: {r['reason']}")
    rows = [row for r in results for row in table_rows(r)]
    benchlib.add_ratios(rows, {"time": "medscrub", "recall": "medscrub"})
    report = benchlib.report(
        "ocr", rows, inputs=inputs, results=results,
        versions_=benchlib.versions("medscrub-ocr", "rapidocr", "onnxruntime", "presidio-image-redactor",
                                    "presidio-analyzer", "spacy"))
    benchlib.show(report)
    print(f"\nresults: {benchlib.save(report, args.json)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
