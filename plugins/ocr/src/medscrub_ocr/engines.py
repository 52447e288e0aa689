"""Text detection engines: where is text, whatever it says.

An engine takes an 8-bit RGB image and returns axis-aligned boxes
``(x0, y0, x1, y1)`` (end exclusive) in that image's pixels.  It never
filters by what the text says: names are in no dictionary.

``rapidocr`` runs the PP-OCR detection network (DB, differentiable
binarisation) shipped inside the ``rapidocr`` (3.x) or
``rapidocr-onnxruntime`` (1.4.x) wheel with onnxruntime, from the package
folder: nothing is fetched.  Only the network file is used; the pre- and
post-processing here are ours, so that the scales and thresholds are the
recipe's.  ``tesseract`` asks Debian's tesseract-ocr (through pytesseract)
for its word boxes.

Reading (what a box says) is for ``medscrub verify`` only, never for choosing
what to erase: :class:`PaddleReader` runs the PP-OCR recognition network of
the same wheel (CTC, its character list stored in the network file), and
:class:`TesseractReader` asks tesseract to read one line.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from medscrub import MedscrubError

Box = tuple[int, int, int, int]

# Packages that ship PP-OCR detection networks, and the networks in the order
# we prefer them: PP-OCRv6 small (rapidocr 3.10) finds more text than
# PP-OCRv4 (rapidocr 3.0-3.8, rapidocr-onnxruntime 1.4), which is about a
# quarter faster (docs/ocr.md has the numbers).  Others come after, by name.
MODEL_PACKAGES = ("rapidocr", "rapidocr_onnxruntime")
MODEL_PREFERENCE = ("PP-OCRv6_det_small.onnx", "ch_PP-OCRv4_det_infer.onnx")
READER_PREFERENCE = ("PP-OCRv6_rec_small.onnx", "ch_PP-OCRv4_rec_infer.onnx")


class EngineUnavailable(MedscrubError):
    """The engine's library or model is not installed."""


class Engine(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Boxes of text in an 8-bit RGB image."""


def bundled_models(role: str = "_det") -> list[Path]:
    """Every PP-OCR detection (``_det``) or recognition (``_rec``) network
    found inside installed packages."""
    found = []
    for package in MODEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            models = Path(root) / "models"
            if models.is_dir():
                found += sorted(p for p in models.glob("*.onnx") if role in p.name)
    return found


def default_model() -> Path:
    models = bundled_models()
    if not models:
        raise EngineUnavailable(
            "no PP-OCR detection model is installed: pip install rapidocr (3.x) or rapidocr-onnxruntime (1.4.x)"
        )
    rank = {name: i for i, name in enumerate(MODEL_PREFERENCE)}
    return min(models, key=lambda p: (rank.get(p.name, len(rank)), p.name))


@dataclass
class DetectorSettings:
    threshold: float = 0.3  # probability that a pixel is text
    box_threshold: float = 0.5  # mean probability over a region to keep it
    unclip: float = 1.6  # DB's shrink is undone by area * unclip / perimeter
    threads: int = 1  # onnxruntime intra-op threads (0: all cores); one per worker is the most efficient


def _session(model: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise EngineUnavailable("onnxruntime is not installed: pip install onnxruntime") from e
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class PaddleDetector:
    """PP-OCR's DB text detector through onnxruntime, from a local file."""

    name = "rapidocr"

    def __init__(self, model: Path | None = None, settings: DetectorSettings | None = None) -> None:
        self.model = Path(model) if model else default_model()
        if not self.model.is_file():
            raise EngineUnavailable(f"detection model {self.model} does not exist")
        self.settings = settings or DetectorSettings()
        self.session = _session(self.model, self.settings.threads)
        self.input = self.session.get_inputs()[0].name

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """The network's text probability map, the size of ``rgb``."""
        h, w = rgb.shape[:2]
        # the network wants sides that are multiples of 32: pad, never stretch
        ph, pw = -(-max(h, 32) // 32) * 32, -(-max(w, 32) // 32) * 32
        x = np.zeros((ph, pw, 3), np.float32)
        x[:h, :w] = rgb[:, :, ::-1]  # trained on BGR
        x = x * (2 / 255.0) - 1.0
        out = self.session.run(None, {self.input: x.transpose(2, 0, 1)[None]})[0]
        return out[0, 0, :h, :w]

    def detect(self, rgb: np.ndarray) -> list[Box]:
        s = self.settings
        prob = self.probability(rgb)
        bitmap = (prob > s.threshold).astype(np.uint8)
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(bitmap, connectivity=8)
        h, w = prob.shape
        boxes = []
        for i in range(1, n):
            x, y, bw, bh, area = stats[i]
            if min(bw, bh) < 2:
                continue
            # a region over most of a large image is texture (speckle), not a line of text
            if h > 128 and w > 128 and bh > h / 2 and bw > w / 2:
                continue
            region = labels[y:y + bh, x:x + bw] == i
            if float(prob[y:y + bh, x:x + bw][region].mean()) < s.box_threshold:
                continue
            d = area * s.unclip / (2 * (bw + bh))
            boxes.append((max(0, int(x - d)), max(0, int(y - d)), min(w, int(np.ceil(x + bw + d))),
                          min(h, int(np.ceil(y + bh + d)))))
        return boxes


class TesseractDetector:
    """Word boxes from tesseract's page layout analysis (sparse text mode)."""

    name = "tesseract"

    def __init__(self, min_confidence: float = 10.0, language: str = "eng") -> None:
        try:
            import pytesseract
        except ImportError as e:
            raise EngineUnavailable("pytesseract is not installed: pip install pytesseract") from e
        try:
            pytesseract.get_tesseract_version()
        except (pytesseract.TesseractNotFoundError, OSError) as e:
            raise EngineUnavailable("tesseract is not installed: apt-get install tesseract-ocr") from e
        self._tesseract = pytesseract
        self.min_confidence = min_confidence
        self.language = language

    def detect(self, rgb: np.ndarray) -> list[Box]:
        data = self._tesseract.image_to_data(
            rgb, lang=self.language, config="--psm 11", output_type=self._tesseract.Output.DICT
        )
        boxes = []
        for text, conf, x, y, w, h in zip(data["text"], data["conf"], data["left"], data["top"],
                                         data["width"], data["height"], strict=True):
            # any word tesseract is somewhat sure of: the words themselves are not judged
            if str(text).strip() and float(conf) >= self.min_confidence and w > 1 and h > 1:
                boxes.append((int(x), int(y), int(x + w), int(y + h)))
        return boxes

    def read(self, rgb: np.ndarray) -> str:
        """The text tesseract reads in an image (for checks, never for choosing boxes)."""
        return self._tesseract.image_to_string(rgb, lang=self.language, config="--psm 11")


class Reader(Protocol):
    name: str

    def read(self, rgb: np.ndarray) -> tuple[str, float]:
        """The text of one line in an 8-bit RGB crop, and a confidence from 0 to 1."""


class PaddleReader:
    """PP-OCR's text recognition network (CTC) through onnxruntime, from a local file."""

    name = "rapidocr"
    HEIGHT = 48  # the network's input height

    def __init__(self, model: Path | None = None, threads: int = 1) -> None:
        models = bundled_models("_rec") if model is None else [Path(model)]
        rank = {name: i for i, name in enumerate(READER_PREFERENCE)}
        models = sorted((m for m in models if m.is_file()), key=lambda p: (rank.get(p.name, len(rank)), p.name))
        if not models:
            raise EngineUnavailable(
                "no PP-OCR recognition model is installed: pip install rapidocr (3.x) or rapidocr-onnxruntime (1.4.x)"
            )
        self.model = models[0]
        self.session = _session(self.model, threads)
        characters = self.session.get_modelmeta().custom_metadata_map.get("character")
        if not characters:
            raise EngineUnavailable(f"{self.model.name} holds no character list; it cannot be read without one")
        # class 0 is CTC's blank; the last is the space the network was trained with
        self.characters = ["", *characters.splitlines(), " "]
        self.input = self.session.get_inputs()[0].name

    def read(self, rgb: np.ndarray) -> tuple[str, float]:
        h, w = rgb.shape[:2]
        if h < 2 or w < 2:
            return "", 0.0
        width = max(16, int(np.ceil(self.HEIGHT * w / h)))
        x = cv2.resize(np.ascontiguousarray(rgb[:, :, ::-1]), (width, self.HEIGHT))  # trained on BGR
        x = x.astype(np.float32).transpose(2, 0, 1) * (2 / 255.0) - 1.0
        scores = self.session.run(None, {self.input: x[None]})[0][0]
        best = scores.argmax(1)
        keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]  # CTC: drop blanks and repeats
        if not keep.any():
            return "", 0.0
        text = "".join(self.characters[i] if i < len(self.characters) else "" for i in best[keep])
        return text, float(scores.max(1)[keep].mean())


class TesseractReader:
    """tesseract reading one line (``--psm 7``)."""

    name = "tesseract"

    def __init__(self, language: str = "eng") -> None:
        self._tesseract = TesseractDetector(0.0, language)._tesseract
        self.language = language

    def read(self, rgb: np.ndarray) -> tuple[str, float]:
        data = self._tesseract.image_to_data(rgb, lang=self.language, config="--psm 7",
                                             output_type=self._tesseract.Output.DICT)
        words = [(str(t).strip(), float(c)) for t, c in zip(data["text"], data["conf"], strict=True) if str(t).strip()]
        if not words:
            return "", 0.0
        return " ".join(t for t, _ in words), max(0.0, min(1.0, sum(c for _, c in words) / len(words) / 100))


_ENGINES: dict[tuple, Engine] = {}
_READERS: dict[tuple, Reader] = {}


def get_reader(name: str, threads: int = 1) -> Reader:
    """One reader per process and engine: loading a network takes time."""
    key = (name, threads, os.getpid())
    reader = _READERS.get(key)
    if reader is None:
        if name == "rapidocr":
            reader = PaddleReader(threads=threads)
        elif name == "tesseract":
            reader = TesseractReader()
        else:
            raise EngineUnavailable(f"unknown text reading engine {name!r}")
        _READERS[key] = reader
    return reader


def get_engine(name: str, model: Path | None = None, settings: DetectorSettings | None = None,
               min_confidence: float = 10.0) -> Engine:
    """One engine per process and configuration: loading a network takes time."""
    key = (name, str(model), settings and tuple(vars(settings).items()), min_confidence, os.getpid())
    engine = _ENGINES.get(key)
    if engine is None:
        if name == "rapidocr":
            engine = PaddleDetector(model, settings)
        elif name == "tesseract":
            engine = TesseractDetector(min_confidence)
        else:
            raise EngineUnavailable(f"unknown text detection engine {name!r}")
        _ENGINES[key] = engine
    return engine
