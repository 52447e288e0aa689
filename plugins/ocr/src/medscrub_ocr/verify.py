"""Text left in the pixels: the OCR part of ``medscrub verify``.

An output whose input may show burned-in text is read with OCR: the same
detector and strategy as the eraser find where text is (cine loops once where
they do not change), the PP-OCR recognition network (or tesseract) reads
each box, and what it reads is compared with the identifying values of the
original: its names, IDs, dates in the forms people write them, institution,
address and device. A finding names the frame and the box, never the value.

Matching is forgiving of OCR, not of meaning: case, accents, spaces and
punctuation are ignored (``DOE^JOHN``, ``Doe, John``; ``04/03/1961``,
``1961-03-04``), letters OCR takes for digits count as those digits
(O and 0, I and 1, S and 5), and a needle of seven or more characters may
differ in one character. A needle matches only as whole words: it starts
and ends at a word edge or where letters turn to digits, so ``ANN`` is not
found in ``ANNOTATION`` but ``1961`` is found in ``DOB1961``; only a needle
of eight digits or more (a full date, a long ID) may sit inside a longer
run of digits, because OCR drops the space between a date and a time
(``17.05.2023 10:11`` read as ``17.05202310:11``) and eight digits do not
match by chance.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medscrub import BadInput, Finding, Item, MedscrubError, mask

from .detect import find_in_frames
from .engines import Box, EngineUnavailable, get_reader
from .options import OcrOptions

CACHE = "verify"  # the core's namespace: {"ocr": "off" | "flagged" | "all", "any_text": bool}
FLAGGED = ("yes", "possible")
DEFER = 4096  # bytes: longer values (pixel data) are read from the file when used
MARGIN = 2  # pixels round a box when it is read
MIN_CONFIDENCE = 0.3  # a reading below this is noise, not text
ANY_TEXT_CONFIDENCE = 0.7  # --ocr-any-text reports readings this sure, of at least ANY_TEXT_CHARS letters or digits
ANY_TEXT_CHARS = 3
FUZZY_FROM = 7  # needles this long may differ in one character
ANYWHERE_DIGITS = 8  # needles with this many digits need no word edges
# The characters OCR confuses, folded onto one of each pair.
_FOLD = str.maketrans({"O": "0", "Q": "0", "I": "1", "L": "1", "S": "5", "Z": "2", "B": "8"})
# Minimum folded length per kind: shorter values match by chance.
MIN_LENGTH = {"name": 3, "id": 4, "date": 6, "institution": 5, "address": 5, "device": 5, "label": 5, "text": 16}


@dataclass(frozen=True)
class Needle:
    folded: str
    kind: str
    original: str  # what a finding masks
    anywhere: bool = False  # may sit inside a longer run of letters and digits


@dataclass(frozen=True)
class Reading:
    frame: int  # from 0
    box: Box
    text: str
    confidence: float


def fold(text: str) -> tuple[str, frozenset[int]]:
    """The letters and digits of ``text``, upper case, without accents and
    with confusable letters as digits; and the offsets where a word may start
    or end (word edges and changes between letters and digits)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).upper()
    chars: list[str] = []
    edges: set[int] = set()
    previous = ""  # "a" letter, "9" digit, "" a separator
    for c in plain:
        kind = "9" if c.isdigit() else "a" if c.isalpha() else ""
        if kind != previous:
            edges.add(len(chars))
        if kind:
            chars.append(c)
        previous = kind
    edges.add(len(chars))
    return "".join(chars).translate(_FOLD), frozenset(edges)


def _name_parts(value: str) -> list[str]:
    """Family, given and middle names of a PN value (prefixes such as Mrs
    and suffixes such as Jr are left out), or the words of a plain name."""
    parts = []
    for group in value.split("="):
        components = group.split("^")[:3] if "^" in group else [group]
        for component in components:
            parts += [p for p in re.split(r"[\s,.]+", component) if p]
    return parts


def needles(identifiers: dict[str, set[str]]) -> list[Needle]:
    """What to look for in the text read from the pixels."""
    from medscrub_dicom.dates import written_forms

    found: dict[str, Needle] = {}

    def add(kind: str, text: str, original: str) -> None:
        folded = fold(text)[0]
        if len(folded) >= MIN_LENGTH[kind]:
            digits = sum(c.isdigit() for c in text)
            found.setdefault(folded, Needle(folded, kind, original, digits >= ANYWHERE_DIGITS))

    for value in sorted(identifiers.get("name", ())):
        for part in _name_parts(value):
            add("name", part, part)
    for value in sorted(identifiers.get("date", ())):
        if re.fullmatch(r"\d{8}", value[:8]):
            for form in written_forms(value[:8]):
                add("date", form, value[:8])
    for kind in ("id", "institution", "address", "device", "label", "text"):
        for value in sorted(identifiers.get(kind, ())):
            add(kind, value, value)
    return sorted(found.values(), key=lambda n: (-len(n.folded), n.folded))


def _one_apart(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one substitution, insertion or deletion."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def find(needle: str, text: str, edges: frozenset[int], anywhere: bool = False) -> bool:
    """Whether ``needle`` (folded) is in ``text`` (folded) as whole words
    (``anywhere``: or inside a word)."""
    start = text.find(needle)
    while start >= 0:
        if anywhere or start in edges and start + len(needle) in edges:
            return True
        start = text.find(needle, start + 1)
    if len(needle) < FUZZY_FROM:
        return False
    for start in sorted(edges):
        for length in (len(needle) - 1, len(needle), len(needle) + 1):
            if start + length in edges and start + length <= len(text) and _one_apart(needle, text[start:start + length]):
                return True
    return False


def read_frames(count: int, frame: Callable[[int], np.ndarray], options: OcrOptions) -> list[Reading]:
    """What the text in every frame says, box by box.  A box whose pixels
    are the same as in an earlier frame (a static overlay) is read once."""
    from .cleaner import engine_of

    reader = get_reader(options.engine, options.threads)
    boxes, _ = find_in_frames(count, frame, engine_of(options), options.strategy(), options.frame_tolerance)
    known: dict[bytes, tuple[str, float]] = {}
    readings = []
    for i, frame_boxes in enumerate(boxes):
        if not frame_boxes:
            continue
        picture = frame(i)
        h, w = picture.shape[:2]
        for box in frame_boxes:
            x0, y0, x1, y1 = box
            crop = np.ascontiguousarray(picture[max(0, y0 - MARGIN):min(h, y1 + MARGIN),
                                                max(0, x0 - MARGIN):min(w, x1 + MARGIN)])
            key = hashlib.blake2b(crop.tobytes() + repr(crop.shape).encode(), digest_size=16).digest()
            if key not in known:
                known[key] = reader.read(crop)
            text, confidence = known[key]
            if text.strip() and confidence >= MIN_CONFIDENCE:
                readings.append(Reading(i, box, text, confidence))
    return readings


def _place(readings: list[Reading]) -> str:
    first = readings[0]
    place = f"pixels (OCR), frame {first.frame + 1}, box {','.join(str(v) for v in first.box)}"
    frames = {r.frame for r in readings}
    return place + (f", and {len(frames) - 1} more frame(s)" if len(frames) > 1 else "")


def findings(readings: Iterable[Reading], wanted: list[Needle], any_text: bool, label: str) -> list[Finding]:
    """A finding per identifying value read (at its first frame and box),
    and with ``any_text`` one per other text read."""
    hits: dict[tuple[str, str], list[Reading]] = {}
    other: dict[str, list[Reading]] = {}
    for reading in readings:
        text, edges = fold(reading.text)
        matched = False
        for needle in wanted:
            if find(needle.folded, text, edges, needle.anywhere):
                hits.setdefault((needle.kind, needle.original), []).append(reading)
                matched = True
        if not matched and any_text and reading.confidence >= ANY_TEXT_CONFIDENCE and len(text) >= ANY_TEXT_CHARS:
            other.setdefault(reading.text.strip(), []).append(reading)
    found = [Finding(label, _place(rs), kind, mask(original)) for (kind, original), rs in hits.items()]
    found += [Finding(label, _place(rs), "text", mask(text)) for text, rs in other.items()]
    return found


# -- the hook's work, per format ----------------------------------------------------------


def settings(context, options: OcrOptions) -> tuple[str, bool]:
    """The mode ("off", "flagged" or "all") and whether any text counts:
    ``medscrub verify``'s switches where it gave them, else the recipe's."""
    given = context.cache(CACHE) if context is not None else {}
    mode = given.get("ocr") or options.verify
    any_text = given.get("any_text")
    return mode, options.verify_any_text if any_text is None else bool(any_text)


def count_checked(context) -> None:
    if context is not None:
        shared = context.cache(CACHE)
        shared["ocr_checked"] = shared.get("ocr_checked", 0) + 1


def _may_show_text(ds, original: Path | None) -> bool:
    """What medscrub-dicom says of the output, or of the input: an output
    that erase-text cleaned says BurnedInAnnotation NO, and is checked
    because its input said or suggested text."""
    from pydicom import dcmread

    from medscrub_dicom.burned_in import burned_in_status

    if burned_in_status(ds) in FLAGGED:
        return True
    if original is None:
        return False
    try:
        # deferred: the input's pixel data are not read, only seen to be there
        source = dcmread(original, defer_size=DEFER, force=True)
    except Exception:  # an unreadable input is the DICOM verifier's finding
        return False
    return burned_in_status(source) in FLAGGED


def verify_dicom(output: Path, original: Path | None, context, options: OcrOptions) -> list[Finding]:
    from pydicom import dcmread

    from medscrub_dicom.verify import original_identifiers

    from .dicom import DicomImage, has_pixels

    mode, any_text = settings(context, options)
    label = str(output)
    if mode == "off":
        return []
    try:
        # deferred: the pixels are read only where the output is to be read with OCR
        ds = dcmread(output, defer_size=DEFER, force=True)
    except Exception:  # the DICOM verifier reports an unreadable output
        return []
    if not has_pixels(ds) or (mode == "flagged" and not _may_show_text(ds, original)):
        return []
    try:
        image = DicomImage(ds)
        readings = read_frames(image.frames_count, image.frame, options)
    except (BadInput, EngineUnavailable) as e:
        return [Finding(label, "pixels (OCR)", "not checked", str(e)[:120])]
    count_checked(context)
    wanted: list[Needle] = []
    if readings and original is not None:
        try:
            wanted = needles(original_identifiers(Path(original), context)[0])
        except MedscrubError:  # the DICOM verifier reports an unreadable input
            wanted = []
    return findings(readings, wanted, any_text, label)


def verify_image(output: Path, original: Path | None, context, options: OcrOptions) -> list[Finding]:
    from PIL import Image, UnidentifiedImageError

    from . import image
    from .views import as_rgb, to_uint8

    mode, any_text = settings(context, options)
    if mode == "off":
        return []
    label = str(output)
    try:
        with Image.open(output) as im:
            picture = as_rgb(to_uint8(np.asarray(im if im.mode in image.KEPT_MODES else im.convert("RGB"))))
    except (OSError, UnidentifiedImageError):  # image.verify reports it
        return []
    try:
        readings = read_frames(1, lambda _: picture, options)
    except EngineUnavailable as e:
        return [Finding(label, "pixels (OCR)", "not checked", str(e)[:120])]
    count_checked(context)
    wanted: list[Needle] = []
    if readings and original is not None:
        try:
            source = Path(original)
            wanted = needles(image.read(Item(source.name, image.FORMAT, (source,), source.parent)).identifiers)
        except MedscrubError:
            wanted = []
    return findings(readings, wanted, any_text, label)
