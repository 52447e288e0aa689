"""The DICOM leak check.

:func:`verify_output` re-runs the profile's decisions on the original input
(a fresh copy in memory; the input is not touched) to learn which values had
to go, then looks for them in the output: in every element at every depth,
parsed and decoded, and in the raw bytes in the output's character sets.
It also reports instance UIDs that were not remapped.

:func:`check_dataset` is the fast in-memory variant: a cleaned dataset
against the identifiers remembered while it was cleaned.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.charset import convert_encodings

from medscrub import Asset, Finding, Item, MedscrubError, mask

from .dates import written_forms
from .profile import CLASS_UIDS, REMOVE, STRUCTURAL_TEXT, is_well_known_uid
from .rules import describe

TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT"})
RAW_KINDS = ("name", "id", "date", "uid", "institution", "device", "address")
MIN_TEXT = 3
# Removed free text is looked for only when it is this long: short phrases
# ("WHOLE BODY", "CHEST") recur in coded and kept attributes without naming anyone.
MIN_FREE_TEXT = 16
MIN_RAW = 5
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})


class Matcher:
    """Finds remembered identifiers in text values."""

    def __init__(self, identifiers: dict[str, set[str]]) -> None:
        self.uids = {u for u in identifiers.get("uid", ()) if u}
        words: dict[str, tuple[str, str]] = {}  # lower-cased needle -> (kind, original)

        def add(kind: str, needle: str, original: str) -> None:
            needle = needle.strip()
            if len(needle) >= (MIN_FREE_TEXT if kind == "text" else 2 if kind == "name-part" else MIN_TEXT):
                words.setdefault(needle.lower(), (kind, original))

        for kind, values in identifiers.items():
            if kind == "uid":
                continue
            for value in values:
                add(kind, value, value)
                if kind == "name":
                    add(kind, " ".join(p for p in re.split(r"[\^=]+", value) if p), value)
                elif kind == "date":
                    for form in written_forms(value[:8]):
                        if len(form) >= 8:
                            add(kind, form, value)
        self.words = words
        self.pattern = self._compile(words)
        # Defined terms (CS) and code and product labels are a vocabulary: a
        # single name part such as "Perfusion" or "Test" there is a term.  Only whole
        # names, IDs, dates and places are looked for in them.
        self.coded_pattern = self._compile({
            w: (kind, original) for w, (kind, original) in words.items()
            if kind not in ("name-part", "text") and not (kind == "name" and not re.search(r"[\^= ]", w))
        })

    @staticmethod
    def _compile(words: dict) -> re.Pattern[str] | None:
        if not words:
            return None
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))
        return re.compile(rf"(?<![0-9a-z])(?:{alternatives})(?![0-9a-z])", re.IGNORECASE)

    def find(self, text: str, coded: bool = False) -> list[tuple[str, str]]:
        """(kind, original value) for each identifier found in ``text``;
        ``coded`` for a CS value."""
        pattern = self.coded_pattern if coded else self.pattern
        if pattern is None or not text:
            return []
        return [self.words[m.group(0).lower()] for m in pattern.finditer(text)]


def _texts(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value).decode("latin-1", "replace")]
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, str):
        return [str(v) for v in value]
    return [str(value)]


def check_dataset(ds: Dataset, identifiers: dict[str, set[str]], label: str = "",
                  mapped_uids: set[str] | None = None) -> list[Finding]:
    """Remembered identifiers found anywhere in a (cleaned) dataset, file meta included."""
    matcher = Matcher(identifiers)
    uids = set(mapped_uids) if mapped_uids is not None else matcher.uids
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()

    def walk(dataset: Dataset, prefix: str) -> None:
        for elem in dataset:
            tag = int(elem.tag)
            place = prefix + describe(tag)
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or ()):
                    walk(item, f"{prefix}({tag >> 16:04X},{tag & 0xFFFF:04X})[{i}]>")
                continue
            if tag in PIXEL_TAGS:
                continue
            if elem.VR == "UI":
                for v in _texts(elem.value):
                    v = v.strip().rstrip("\0")
                    if v in uids and (place, v) not in seen:
                        seen.add((place, v))
                        findings.append(Finding(label, place, "uid not remapped", mask(v)))
                continue
            if elem.VR in TEXT_VRS or elem.VR == "UN" or elem.tag.is_private:
                for text in _texts(elem.value):
                    coded = elem.VR == "CS" or elem.keyword in STRUCTURAL_TEXT
                    for kind, original in matcher.find(text, coded=coded):
                        if (place, original) not in seen:
                            seen.add((place, original))
                            findings.append(Finding(label, place, kind, mask(original)))

    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        walk(meta, "file meta ")
    walk(ds, "")
    return findings


def _encodings(ds: Dataset) -> list[str]:
    names = ["utf-8", "latin-1"]
    charset = ds.get("SpecificCharacterSet")
    if charset is not None:
        try:
            names += convert_encodings(list(charset) if not isinstance(charset, str) else [charset])
        except Exception:  # an unknown character set term: the defaults still run
            pass
    return list(dict.fromkeys(names))


def scan_raw(data: bytes, identifiers: dict[str, set[str]], encodings: list[str], label: str) -> list[Finding]:
    """Remembered identifiers in the raw bytes, in each character set of the file."""
    findings = []
    for kind in RAW_KINDS:
        for value in sorted(identifiers.get(kind, ())):
            if len(value) < MIN_RAW:
                continue
            for encoding in encodings:
                try:
                    needle = value.encode(encoding)
                except (UnicodeEncodeError, LookupError):
                    continue
                at = data.find(needle)
                if at >= 0:
                    findings.append(Finding(label, f"bytes at offset {at} ({encoding})", kind, mask(value)))
                    break
    return findings


def original_identifiers(original: Path, context) -> tuple[dict[str, set[str]], set[str]]:
    """What the profile takes out of ``original``, learned by cleaning a copy in memory."""
    from .plugin import scrub_asset
    from .reader import read

    item = Item(original.name, "dicom", (original,), original.parent)
    asset: Asset = read(item)
    scrubber = scrub_asset(asset, context, keep_dicomdir=True)
    return asset.identifiers, (scrubber.mapped_uids if scrubber is not None else set())


def self_check(ds: Dataset, context, label: str) -> list[Finding]:
    """With no original: elements the profile removes that are still there,
    and instance UIDs outside the 2.25 root that medscrub gives."""
    from .plugin import plan_for

    plan = plan_for(context)
    findings = []

    def walk(dataset: Dataset, prefix: str) -> None:
        for elem in dataset:
            tag = int(elem.tag)
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or ()):
                    walk(item, f"{prefix}({tag >> 16:04X},{tag & 0xFFFF:04X})[{i}]>")
                continue
            if tag >> 16 & 1:
                continue
            decision = plan.decide(tag, elem.VR, "")
            if decision.action == REMOVE and not elem.is_empty:
                findings.append(Finding(label, prefix + describe(tag), "element the profile removes"))
            elif elem.VR == "UI" and elem.keyword not in CLASS_UIDS and decision.action != "keep":
                for v in _texts(elem.value):
                    v = v.strip().rstrip("\0")
                    if "." in v and not v.startswith("2.25.") and not is_well_known_uid(v):
                        findings.append(Finding(label, prefix + describe(tag), "uid not remapped", mask(v)))

    walk(ds, "")
    return findings


def verify_output(output: Path, original: Path | None, context) -> list[Finding]:
    label = str(output)
    try:
        cleaned = dcmread(output, force=True)
    except Exception as e:
        return [Finding(label, "file", "unreadable output", f"{type(e).__name__}")]
    if original is None:
        return self_check(cleaned, context, label)
    try:
        identifiers, mapped = original_identifiers(Path(original), context)
    except MedscrubError as e:
        return [Finding(label, "input", "unverifiable", str(e))]
    findings = check_dataset(cleaned, identifiers, label, mapped)
    findings += scan_raw(Path(output).read_bytes(), identifiers, _encodings(cleaned), label)
    return findings
