"""Open a twix file: its layout and the identifying field values of every header."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from medscrub import Asset, Item

from . import catalog
from .layout import ENTRY_SIZE, NAME_FIELD, PATIENT_NAME_AT, PROTOCOL_NAME_AT, Layout, read_layout
from .xprot import Field, Span, measurement_fields, unquote

SIEMENS_ROOT = "1.3.12.2.1107.5.2."
SERIAL_COMPONENT = 8  # 1.3.12.2.1107.5.2.<model>.<serial>
_DIGITS = re.compile(r"\d+")
_NEUTRAL = re.compile(r"^[\sxX0.:/_-]*$")


@dataclass
class Occurrence:
    """One value of one field in one measurement."""

    meas: int
    field: Field
    span: Span
    value: str  # the original, latin-1
    category: str | None

    @property
    def place(self) -> str:
        return f"meas {self.meas}/{self.field.buffer}:{self.field.name}"


@dataclass
class EntryNames:
    """The names in one file-header entry."""

    index: int
    meas: int
    patient: bytes  # the 64-byte fields as stored
    protocol: bytes


@dataclass
class TwixFile:
    """``asset.data`` of a twix asset."""

    path: Path
    layout: Layout
    occurrences: list[Occurrence]
    entries: list[EntryNames]
    # filled by the rules: absolute offset -> new bytes; ranges written as zeros
    patches: dict[int, bytes] = field(default_factory=dict)
    zeros: list[tuple[int, int]] = field(default_factory=list)
    expected: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (offset, original, new) per value


def neutral(value: str) -> bool:
    """Blank or already masked by the scanner (``xxxxxxx``, zeros)."""
    return bool(_NEUTRAL.match(value))


def is_date(s: str) -> bool:
    if len(s) != 8 or not s.isdigit() or not ("1900" <= s[:4] <= "2099"):
        return False
    try:
        dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    except ValueError:
        return False
    return True


def uid_parts(value: str) -> list[tuple[int, str]]:
    """(index among digit components, digits) for each digit run of a UID or LOID."""
    return [(i, m.group()) for i, m in enumerate(_DIGITS.finditer(value))]


def serial_of(value: str) -> str | None:
    if value.startswith(SIEMENS_ROOT):
        parts = uid_parts(value)
        if len(parts) > SERIAL_COMPONENT:
            return parts[SERIAL_COMPONENT][1]
    return None


def wanted_predicate(extra: dict[str, str], selectors: set[str]) -> Callable[[str], bool]:
    def wanted(name: str) -> bool:
        return catalog.category(name, extra) is not None or name.lower() in selectors
    return wanted


def read_twix(item: Item, asset_factory: Callable[[TwixFile], Asset], extra: dict[str, str],
              selectors: set[str]) -> Asset:
    path = item.path
    layout = read_layout(path)
    wanted = wanted_predicate(extra, selectors)
    occurrences: list[Occurrence] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for meas in layout.measurements:
            header = os.pread(fd, meas.header_length, meas.offset)
            for f in measurement_fields(header, meas, wanted):
                cat = catalog.category(f.name, extra) or catalog.category(f.short, extra)
                for span in f.spans:
                    raw = header[span.start - meas.offset:span.end - meas.offset]
                    occurrences.append(Occurrence(meas.number, f, span, unquote(raw) if span.quoted else
                                                  raw.decode("latin-1"), cat))
        entries = []
        if layout.version == "VD":
            by_offset = {m.offset: m.number for m in layout.measurements}
            head = os.pread(fd, 8 + ENTRY_SIZE * len(layout.entries), 0)
            for e in layout.entries:
                at = 8 + e.index * ENTRY_SIZE
                entries.append(EntryNames(
                    e.index, by_offset[e.offset],
                    head[at + PATIENT_NAME_AT:at + PATIENT_NAME_AT + NAME_FIELD],
                    head[at + PROTOCOL_NAME_AT:at + PROTOCOL_NAME_AT + NAME_FIELD],
                ))
    finally:
        os.close(fd)
    data = TwixFile(Path(path), layout, occurrences, entries)
    asset = asset_factory(data)
    remember_all(asset, data)
    if layout.truncated:
        asset.flags["truncated"] = layout.truncated
    return asset


_KIND = {
    catalog.NAME: "name", catalog.PHYSICIAN: "name", catalog.ID: "id", catalog.IDENTIFIER: "id",
    catalog.INSTITUTION: "institution", catalog.ADDRESS: "address", catalog.DEVICE: "device",
    catalog.TEXT: "text", catalog.PROTOCOL: "text",
}


def remember_all(asset: Asset, data: TwixFile) -> None:
    """Every original identifying value, for the leak check (kept ones are
    forgotten again by the rules)."""
    for occ in data.occurrences:
        value = occ.value.strip()
        if not value or neutral(value) or occ.category is None:
            continue
        for kind, v in identifying_parts(occ.category, value):
            asset.remember(kind, v)
    for e in data.entries:
        name = c_string(e.patient)
        if name and not neutral(name):
            asset.remember("name", name)


def identifying_parts(category: str, value: str) -> list[tuple[str, str]]:
    """(kind, value) pairs worth a raw search in the output."""
    if category in _KIND:
        return [(_KIND[category], value)]
    if category in (catalog.BIRTH_DATE, catalog.DATE):
        return [("date", m.group()[:8]) for m in _DIGITS.finditer(value) if is_date(m.group()[:8])]
    if category == catalog.UID:
        out = []
        serial = serial_of(value)
        if serial:
            out.append(("device", serial))
        for _, run in uid_parts(value):
            if len(run) >= 8 and is_date(run[:8]):
                out.append(("date", run[:8]))
        # Whole UIDs are not searched for: each search is a pass over the
        # whole output in the core's leak check, and the identifying parts
        # (serial, dates) are searched for on their own.
        return out
    return []


def c_string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()
