"""Look for identifying values left in a twix output.

With the original at hand, every field this plugin scrubs is compared value
by value (the same measurement, buffer, field and position), and the
output's headers are searched for every original identifying value.  With no
original, patient-name fields that still look like a person's name are
reported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from medscrub import Asset, Finding, Item, mask

from . import catalog
from .layout import read_layout
from .reader import TwixFile, c_string, neutral, wanted_predicate
from .xprot import measurement_fields, unquote

RAW_KINDS = ("name", "id", "date", "uid", "institution", "device", "address")
_PERSON = re.compile(r"\^|,\s*\w|\w\s+\w")


def _values(path: Path, extra: dict[str, str], selectors: set[str]) -> dict[tuple, tuple[str, str | None]]:
    """(meas, buffer, field, n-th field of that name, n-th value) -> (value, category)."""
    layout = read_layout(path, walk_vb=False)
    wanted = wanted_predicate(extra, selectors)
    out: dict[tuple, tuple[str, str | None]] = {}
    with open(path, "rb") as f:
        for meas in layout.measurements:
            f.seek(meas.offset)
            header = f.read(meas.header_length)
            seen: dict[tuple[str, str], int] = {}
            for field in measurement_fields(header, meas, wanted):
                n = seen.get((field.buffer, field.name), 0)
                seen[(field.buffer, field.name)] = n + 1
                cat = catalog.category(field.name, extra) or catalog.category(field.short, extra)
                for k, span in enumerate(field.spans):
                    raw = header[span.start - meas.offset:span.end - meas.offset]
                    value = unquote(raw) if span.quoted else raw.decode("latin-1")
                    out[(meas.number, field.buffer, field.name, n, k)] = (value, cat)
    return out


def _headers(path: Path) -> list[tuple[str, bytes]]:
    layout = read_layout(path, walk_vb=False)
    out = []
    with open(path, "rb") as f:
        if layout.version == "VD":
            out.append(("file header", f.read(min(m.offset for m in layout.measurements))))
        for meas in layout.measurements:
            f.seek(meas.offset)
            out.append((f"meas {meas.number} header", f.read(meas.header_length)))
    return out


def header_leaks(path: Path, identifiers: dict[str, set[str]], label: str) -> list[Finding]:
    """Remembered values found in the header bytes of ``path``."""
    findings = []
    for place, data in _headers(path):
        for kind in RAW_KINDS:
            for value in sorted(identifiers.get(kind, ())):
                if len(value) >= 4 and value.encode("latin-1", "replace") in data:
                    findings.append(Finding(label, place, kind, mask(value)))
    return findings


def verify(output: Path, original: Path | None, asset: Asset | None, extra: dict[str, str],
           selectors: set[str]) -> list[Finding]:
    label = output.name
    findings: list[Finding] = []
    after = _values(output, extra, selectors)
    if original is None or asset is None:
        for (meas, buffer, name, _, _), (value, cat) in after.items():
            if cat == catalog.NAME and not neutral(value) and _PERSON.search(value.strip()):
                findings.append(Finding(label, f"meas {meas}/{buffer}:{name}", "name", mask(value.strip())))
        layout = read_layout(output, walk_vb=False)
        if layout.version == "VD":
            with open(output, "rb") as f:
                head = f.read(8 + 152 * len(layout.entries))
            for e in layout.entries:
                name = c_string(head[8 + e.index * 152 + 24:8 + e.index * 152 + 88])
                if name and not neutral(name) and _PERSON.search(name):
                    findings.append(Finding(label, f"file header/entry {e.index + 1}:PatientName", "name", mask(name)))
        return findings
    data: TwixFile = asset.data
    before = _values(original, extra, selectors)
    changed = {start for start, _, _ in data.expected}
    for key, (value, cat) in before.items():
        if cat is None or not value.strip() or neutral(value):
            continue
        now = after.get(key)
        if now is None:
            continue
        if now[0] == value and _was_scrubbed(data, key, value, changed):
            meas, buffer, name, _, _ = key
            findings.append(Finding(label, f"meas {meas}/{buffer}:{name}", cat, mask(value.strip())))
    findings += header_leaks(output, asset.identifiers, label)
    return findings


def _was_scrubbed(data: TwixFile, key, value: str, changed: set[int]) -> bool:
    meas, buffer, name, _, _ = key
    return any(occ.meas == meas and occ.field.buffer == buffer and occ.field.name == name and occ.value == value
               and occ.span.start in changed for occ in data.occurrences)


def open_original(path: Path) -> Item:
    return Item(path.name, "twix", (Path(os.path.abspath(path)),), Path(os.path.abspath(path)).parent)
