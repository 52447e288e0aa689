"""The format-independent part of the leak check: raw bytes and names.

A reader remembers the identifying values of its input
(``asset.remember(kind, value)``); this module looks for them in the bytes
of every output, in the encodings that imaging formats use, and in the
output's path.  Format verifiers (``medscrub_verify``) add what needs
parsing: values at any depth, UIDs that were not remapped.
"""

from __future__ import annotations

import os
from pathlib import Path

import ahocorasick_rs

from .model import Finding, mask

# Kinds whose values are identifying wherever they appear.  Free text
# ("text") is left to the format verifiers: its words may occur innocently.
RAW_KINDS = ("name", "id", "date", "uid", "institution", "device", "address", "label")
# Shorter values would match pixel or k-space bytes by chance.
MIN_RAW_LENGTH = 5
_ENCODINGS = ("utf-8", "latin-1", "utf-16-le", "utf-16-be")
CHUNK = 16 * 2**20
SMALL_SCAN = 4 * 2**20
FIND_WORK = 2**20  # bytes to search times values: below it, bytes.find per value


def needles(identifiers: dict[str, set[str]]) -> list[tuple[str, str, bytes, str]]:
    """(kind, value, encoded bytes, encoding) for every value worth a raw search."""
    out = []
    seen: set[bytes] = set()
    for kind in RAW_KINDS:
        for value in sorted(identifiers.get(kind, ())):
            value = value.strip()
            if len(value) < MIN_RAW_LENGTH:
                continue
            for encoding in _ENCODINGS:
                try:
                    raw = value.encode(encoding)
                except UnicodeEncodeError:
                    continue
                if raw not in seen:
                    seen.add(raw)
                    out.append((kind, value, raw, encoding))
    return out


def _regions(size: int, skip: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[0, size)`` outside the ``skip`` ranges."""
    out, at = [], 0
    for start, end in sorted(skip):
        if start > at:
            out.append((at, min(start, size)))
        at = max(at, end)
    if at < size:
        out.append((at, size))
    return [(a, b) for a, b in out if b > a]


def _inside_a_number(value: str, encoding: str, data: bytes, start: int, stop: int) -> bool:
    """A value of digits alone (a serial, an ID, a date) found inside a longer
    run of digits, such as a new 2.25 UID, is chance, not a leak."""
    if not value.isdigit():
        return False
    width = 2 if encoding.startswith("utf-16") else 1

    def digit(at: int) -> bool:
        unit = data[at:at + width]
        if len(unit) < width:
            return False
        char = unit[1:] if encoding == "utf-16-be" else unit[:1]
        return char.isdigit() and (width == 1 or unit.replace(char, b"", 1) == b"\0")

    return digit(start - width) or digit(stop)


def scan_bytes(
    path: Path, identifiers: dict[str, set[str]], label: str | None = None, skip: list[tuple[int, int]] = ()
) -> list[Finding]:
    """Findings for every remembered value present in the bytes of ``path``.

    One pass over the file in chunks (Aho-Corasick over every value in every
    encoding), so time grows with the file and memory stays small.  A value
    inside a longer matching value may go unreported on its own; the longer
    one is reported, and one finding is enough to withhold an output.  ``skip``
    lists byte ranges a writer declared as sample data (pixels, k-space,
    tiles) copied from the input: they are not text, and searching them for
    short strings only finds chance matches.  A value of digits alone counts
    only where it is not part of a longer number.
    """
    wanted = needles(identifiers)
    if not wanted:
        return []
    label = label or str(path)
    findings: list[Finding] = []
    reported: set[str] = set()
    with open(path, "rb") as f:
        regions = _regions(os.fstat(f.fileno()).st_size, list(skip))
        total = sum(b - a for a, b in regions)
        if total * len(wanted) <= FIND_WORK:
            # A few kilobytes of header: a search per value costs less than
            # building any automaton.
            for start, end in regions:
                f.seek(start)
                _find_each(f.read(end - start), start, wanted, label, reported, findings)
            return findings
        # Building the fast automaton costs more than scanning a small file
        # with a slower one: pick by how much there is to read.
        small = total < SMALL_SCAN
        implementation = ahocorasick_rs.Implementation.ContiguousNFA if small else None
        automaton = ahocorasick_rs.BytesAhoCorasick([raw for _, _, raw, _ in wanted], implementation=implementation)
        longest = max(len(raw) for _, _, raw, _ in wanted)
        for start, end in regions:
            at = start
            tail = b""
            while at < end:
                f.seek(at)
                chunk = tail + f.read(min(CHUNK, end - at))
                base = at - len(tail)
                for index, found, stop in automaton.find_matches_as_indexes(chunk):
                    kind, value, _, encoding = wanted[index]
                    if value not in reported and not _inside_a_number(value, encoding, chunk, found, stop):
                        reported.add(value)
                        findings.append(Finding(label, f"bytes at offset {base + found} ({encoding})", kind, mask(value)))
                at += len(chunk) - len(tail)
                tail = chunk[-(longest - 1):] if longest > 1 else b""
    return findings


def _find_each(data: bytes, base: int, wanted, label: str, reported: set[str], findings: list[Finding]) -> None:
    for kind, value, raw, encoding in wanted:
        if value in reported:
            continue
        at = data.find(raw)
        while at >= 0:
            if not _inside_a_number(value, encoding, data, at, at + len(raw)):
                reported.add(value)
                findings.append(Finding(label, f"bytes at offset {base + at} ({encoding})", kind, mask(value)))
                break
            at = data.find(raw, at + 1)


def scan_name(relative: str, identifiers: dict[str, set[str]]) -> list[Finding]:
    """Findings for remembered values in an output's path."""
    lowered = relative.lower()
    findings = []
    for kind in RAW_KINDS:
        for value in identifiers.get(kind, ()):
            v = value.strip().lower()
            if len(v) >= 3 and v in lowered:
                findings.append(Finding(relative, "file name", kind, mask(value)))
    return findings
