"""The format-independent part of the leak check: raw bytes and names.

A reader remembers the identifying values of its input
(``asset.remember(kind, value)``); this module looks for them in the bytes
of every output, in the encodings that imaging formats use, and in the
output's path.  Format verifiers (``medscrub_verify``) add what needs
parsing: values at any depth, UIDs that were not remapped.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from .model import Finding, mask

# Kinds whose values are identifying wherever they appear.  Free text
# ("text") is left to the format verifiers: its words may occur innocently.
RAW_KINDS = ("name", "id", "date", "uid", "institution", "device", "address", "label")
# Shorter values would match pixel or k-space bytes by chance.
MIN_RAW_LENGTH = 5
_ENCODINGS = ("utf-8", "latin-1", "utf-16-le", "utf-16-be")


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


def scan_bytes(path: Path, identifiers: dict[str, set[str]], label: str | None = None) -> list[Finding]:
    """Findings for every remembered value present in the bytes of ``path``."""
    wanted = needles(identifiers)
    if not wanted:
        return []
    label = label or str(path)
    findings = []
    with open(path, "rb") as f:
        try:
            data: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            return []
        try:
            reported: set[str] = set()
            for kind, value, raw, encoding in wanted:
                if value in reported:
                    continue
                at = data.find(raw)
                if at >= 0:
                    reported.add(value)
                    findings.append(Finding(label, f"bytes at offset {at} ({encoding})", kind, mask(value)))
        finally:
            data.close()
    return findings


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
