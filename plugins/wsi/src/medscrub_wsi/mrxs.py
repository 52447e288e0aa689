"""Reading 3DHistech MRXS (MIRAX) slides: a ``.mrxs`` file and its data folder.

The folder, named like the ``.mrxs`` file without its extension, holds:

* ``Slidedat.ini``: INI groups of ``KEY = VALUE`` lines (UTF-8, usually
  with a BOM).  ``[GENERAL]`` describes the slide, ``[HIERARCHICAL]`` names
  the index file and the record layers (``HIER_i_*`` for the pyramid and
  other image layers, ``NONHIER_i_*`` for the associated images and
  buffers), ``[DATAFILE]`` names the data files;
* the index file (``Index.dat``): a 5-byte version, the ``SLIDE_ID``, then
  little-endian 32-bit values: two pointers to the tables of hierarchical
  and non-hierarchical records, one pointer per ``VAL`` of the INI, in
  order.  A record is a linked list of pages (``count``, ``next``, then
  ``count`` entries); its first page is empty.  A hierarchical entry is
  ``image, offset, length, file``, a non-hierarchical one ``0, 0, offset,
  length, file``;
* data files: a header (version, ``SLIDE_ID`` -- in newer slides UTF-16LE
  cut to the ASCII length -- a 3-character file number, padding), then the
  images and buffers the records point to.

Everything here reads and checks; :mod:`.mrxs_edit` decides and writes.
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medscrub import BadInput
from medscrub.output import safe_component

SUFFIX = ".mrxs"
SLIDEDAT = "Slidedat.ini"
SLIDEDAT_MAX = 1 << 20  # what openslide accepts
BOM = b"\xef\xbb\xbf"
VERSION_LENGTH = 5
FILE_NUMBER_LENGTH = 3
HIER_ENTRY = 4  # int32 values per hierarchical entry
NONHIER_ENTRY = 5

# Associated images, by the VAL name of their non-hierarchical record.
ASSOCIATED = {
    "slidebarcode": "label",
    "slidethumbnail": "macro",
    "slidepreview": "preview",
    "wholeslide": "slide photo",
}

_GROUP = re.compile(r"^\s*\[(.*)\]\s*$")
_FIELD = re.compile(r"^(\s*)([^=]*?)(\s*=\s*)(.*?)(\s*)$", re.S)
_LINE = re.compile(r"([^\r\n]*)(\r\n|\n|\r|$)")


def slide_paths(path: Path) -> tuple[Path, Path] | None:
    """``(the .mrxs file, its data folder)`` when ``path`` is either of
    them (neither need exist but the one asked about), else None."""
    if path.suffix.lower() == SUFFIX and path.is_file():
        return path, path.with_name(path.name[: -len(SUFFIX)])
    if path.is_dir():
        for suffix in (SUFFIX, SUFFIX.upper()):
            mrxs = path.with_name(path.name + suffix)
            if mrxs.is_file():
                return mrxs, path
        if (path / SLIDEDAT).is_file():  # a data folder whose .mrxs file is missing
            return path.with_name(path.name + SUFFIX), path
    return None


def associated_role(value: str) -> str | None:
    """``label``, ``macro``, ``preview`` or ``slide photo`` for a record's VAL name."""
    name = value.strip().lower()
    name = name.removeprefix("scandatalayer_")
    return ASSOCIATED.get(name)


# -- Slidedat.ini ----------------------------------------------------------------


@dataclass
class IniLine:
    text: str
    ending: str
    group: str | None = None
    key: str | None = None  # None: a group header, blank line or something else
    value: str = ""

    def with_value(self, value: str) -> None:
        m = _FIELD.match(self.text)
        assert m is not None and self.key is not None
        self.text = f"{m.group(1)}{m.group(2)}{m.group(3)}{value}{m.group(5)}"
        self.value = value

    def with_key(self, key: str) -> None:
        m = _FIELD.match(self.text)
        assert m is not None
        self.text = f"{m.group(1)}{key}{m.group(3)}{m.group(4)}{m.group(5)}"
        self.key = key


@dataclass
class Ini:
    """Slidedat.ini as lines, so that a rewrite changes only what was edited:
    order, spacing, line endings and the BOM stay."""

    lines: list[IniLine]
    bom: bool
    dropped: list[IniLine] = field(default_factory=list)  # comments and lines that are not key = value

    @classmethod
    def parse(cls, raw: bytes) -> Ini:
        bom = raw.startswith(BOM)
        text = raw[len(BOM):].decode("utf-8", "surrogateescape") if bom else raw.decode("utf-8", "surrogateescape")
        lines: list[IniLine] = []
        dropped: list[IniLine] = []
        group: str | None = None
        for m in _LINE.finditer(text):
            body, ending = m.group(1), m.group(2)
            if not body and not ending:
                break
            line = IniLine(body, ending, group)
            header = _GROUP.match(body)
            if header:
                group = header.group(1).strip()
                line.group = group
            elif body.strip() and not body.lstrip().startswith(("#", ";")) and "=" in body and group is not None:
                fm = _FIELD.match(body)
                assert fm is not None
                line.key, line.value = fm.group(2), fm.group(4)
            elif body.strip():
                # comments and stray text: free text no reader needs
                dropped.append(line)
                continue
            lines.append(line)
        return cls(lines, bom, dropped)

    def encode(self) -> bytes:
        text = "".join(line.text + line.ending for line in self.lines)
        return (BOM if self.bom else b"") + text.encode("utf-8", "surrogateescape")

    def fields(self) -> list[IniLine]:
        return [line for line in self.lines if line.key is not None]

    def get(self, group: str, key: str) -> str | None:
        found = None
        for line in self.lines:
            if line.key == key and line.group == group:
                found = line.value  # the last one wins, as in GLib's key files
        return found

    def need(self, group: str, key: str) -> str:
        value = self.get(group, key)
        if value is None or not value.strip():
            raise BadInput(f"MRXS: Slidedat.ini has no [{group}] {key}")
        return value.strip()

    def integer(self, group: str, key: str, minimum: int = 0) -> int:
        value = self.need(group, key)
        try:
            number = int(value)
        except ValueError:
            raise BadInput(f"MRXS: Slidedat.ini [{group}] {key} is not a number") from None
        if number < minimum:
            raise BadInput(f"MRXS: Slidedat.ini [{group}] {key} is {number}, below {minimum}")
        return number

    def groups(self) -> list[str]:
        return list(dict.fromkeys(line.group for line in self.lines if line.group is not None))

    def drop_group(self, group: str) -> None:
        self.lines = [line for line in self.lines if line.group != group]


# -- the index and the data files ------------------------------------------------------


@dataclass
class Record:
    """One record of the index: where its pages are and what they point to."""

    table: str  # "hier" or "nonhier"
    number: int  # its place in its table
    layer: str  # the layer's NAME in Slidedat.ini
    value: str  # the VAL
    section: str | None  # the VAL's _SECTION group
    pages: list[tuple[int, int]] = field(default_factory=list)  # (offset, bytes) in the index, the empty head first
    entry_at: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # index offset of each entry
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    files: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def role(self) -> str | None:
        return associated_role(self.value) if self.table == "nonhier" else None

    def describe(self) -> str:
        return f"{self.table} record {self.number} ({self.layer}: {self.value})"


@dataclass
class MrxsSlide:
    mrxs: Path
    folder: Path
    ini: Ini
    slide_id: str
    index_name: str
    data_names: list[str]
    index_size: int
    data_sizes: list[int]
    hier_table: int  # offset of the hierarchical record table in the index
    nonhier_table: int
    hier: list[Record]
    nonhier: list[Record]
    header: bytes  # the index's version and SLIDE_ID

    @property
    def index_path(self) -> Path:
        return self.folder / self.index_name

    def data_path(self, number: int) -> Path:
        return self.folder / self.data_names[number]

    @property
    def id_bytes(self) -> bytes:
        return self.slide_id.encode("utf-8", "surrogateescape")

    @property
    def data_header(self) -> int:
        """Bytes of a data file's header that name the version, slide and file."""
        return VERSION_LENGTH + len(self.id_bytes) + FILE_NUMBER_LENGTH


def _plain_name(name: str, what: str) -> str:
    """A file name inside the data folder that the output can keep as it is."""
    name = name.strip()
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise BadInput(f"MRXS: Slidedat.ini names {what} outside the data folder")
    if safe_component(name) != name:
        raise BadInput(f"MRXS: Slidedat.ini names {what} with characters other than A-Z a-z 0-9 . _ -")
    return name


def _size(path: Path, what: str) -> int:
    try:
        return path.stat().st_size if path.is_file() else -1
    except OSError as e:
        raise BadInput(f"MRXS: cannot read {what}: {e.strerror or e}") from None


def _layers(ini: Ini, prefix: str) -> list[tuple[str, str, str | None]]:
    """``(layer NAME, VAL, VAL_SECTION)`` for every record of ``HIER`` or
    ``NONHIER``, in table order."""
    group = "HIERARCHICAL"
    count = ini.integer(group, f"{prefix}_COUNT", 1 if prefix == "HIER" else 0)
    out = []
    for i in range(count):
        name = ini.need(group, f"{prefix}_{i}_NAME")
        values = ini.integer(group, f"{prefix}_{i}_COUNT", 1)
        for j in range(values):
            value = ini.get(group, f"{prefix}_{i}_VAL_{j}") or ""
            section = ini.get(group, f"{prefix}_{i}_VAL_{j}_SECTION")
            out.append((name, value.strip(), section.strip() if section else None))
    return out


def open_slide(mrxs: Path, folder: Path) -> MrxsSlide:
    """Parse and check a slide; BadInput with a one-line reason when it is
    incomplete or damaged.  Nothing but the INI and the index is read."""
    if not mrxs.is_file():
        raise BadInput("MRXS data folder without its .mrxs file (a file named like the folder, next to it)")
    if not folder.is_dir():
        raise BadInput("MRXS slide without its data folder (a folder named like the .mrxs file, next to it)")
    slidedat = folder / SLIDEDAT
    size = _size(slidedat, SLIDEDAT)
    if size < 0:
        raise BadInput("MRXS: the data folder has no Slidedat.ini")
    if size > SLIDEDAT_MAX:
        raise BadInput("MRXS: Slidedat.ini is larger than 1 MiB")
    ini = Ini.parse(slidedat.read_bytes())
    slide_id = ini.need("GENERAL", "SLIDE_ID")
    index_name = _plain_name(ini.need("HIERARCHICAL", "INDEXFILE"), "the index file")
    data_names = [_plain_name(ini.need("DATAFILE", f"FILE_{i}"), "a data file")
                  for i in range(ini.integer("DATAFILE", "FILE_COUNT", 1))]
    if len({index_name.lower(), SLIDEDAT.lower(), *(n.lower() for n in data_names)}) != len(data_names) + 2:
        raise BadInput("MRXS: Slidedat.ini lists one file twice (index, data files)")
    index_size = _size(folder / index_name, "the index file")
    if index_size < 0:
        raise BadInput(f"MRXS: the index file {index_name} is missing")
    data_sizes = []
    for i, name in enumerate(data_names):
        data_size = _size(folder / name, f"data file {i}")
        if data_size < 0:
            raise BadInput(f"MRXS: data file {i} ({name}) is missing")
        data_sizes.append(data_size)
    hier_names, nonhier_names = _layers(ini, "HIER"), _layers(ini, "NONHIER")
    id_bytes = slide_id.encode("utf-8", "surrogateescape")
    with open(folder / index_name, "rb") as f:
        if index_size < VERSION_LENGTH + len(id_bytes) + 8:
            raise BadInput(f"truncated MRXS index: {index_name} is {index_size} bytes")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            header = bytes(mm[: VERSION_LENGTH + len(id_bytes)])
            if header[VERSION_LENGTH:] != id_bytes:
                raise BadInput(f"MRXS: {index_name} does not start with the SLIDE_ID of Slidedat.ini")
            reader = _IndexReader(mm, index_size, index_name, len(data_names))
            roots = VERSION_LENGTH + len(id_bytes)
            hier_table, nonhier_table = reader.ints(roots, 2)
            hier = reader.records("hier", int(hier_table), hier_names)
            nonhier = reader.records("nonhier", int(nonhier_table), nonhier_names)
    slide = MrxsSlide(mrxs, folder, ini, slide_id, index_name, data_names, index_size, data_sizes,
                      int(hier_table), int(nonhier_table), hier, nonhier, header)
    _check_data(slide)
    return slide


class _IndexReader:
    def __init__(self, mm: mmap.mmap, size: int, name: str, files: int) -> None:
        self.mm, self.size, self.name, self.files = mm, size, name, files

    def ints(self, at: int, count: int) -> np.ndarray:
        if at < 0 or at + 4 * count > self.size:
            raise BadInput(f"truncated or damaged MRXS index: {self.name} points past its end (offset {at})")
        return np.frombuffer(self.mm, "<i4", count, at).astype(np.int64)

    def records(self, table: str, at: int, names: list[tuple[str, str, str | None]]) -> list[Record]:
        pointers = self.ints(at, len(names))
        records = []
        for number, (pointer, (layer, value, section)) in enumerate(zip(pointers.tolist(), names, strict=True)):
            record = Record(table, number, layer, value, section)
            if pointer:
                self._pages(record, pointer, HIER_ENTRY if table == "hier" else NONHIER_ENTRY)
            records.append(record)
        return records

    def _pages(self, record: Record, head: int, width: int) -> None:
        seen: set[int] = set()
        entry_at, values = [], []
        page = head
        while page:
            if page in seen:
                raise BadInput(f"damaged MRXS index: a page loop in {record.describe()}")
            seen.add(page)
            count, nxt = self.ints(page, 2).tolist()
            if count < 0 or (page == head and count != 0):
                raise BadInput(f"damaged MRXS index: a bad page in {record.describe()}")
            table = self.ints(page + 8, count * width).reshape(count, width)
            record.pages.append((page, 8 + 4 * count * width))
            entry_at.append(page + 8 + 4 * width * np.arange(count, dtype=np.int64))
            values.append(table)
            page = nxt
        if values:
            table = np.concatenate(values)
            record.entry_at = np.concatenate(entry_at)
            record.offsets, record.lengths, record.files = table[:, -3], table[:, -2], table[:, -1]
        if (record.offsets < 0).any() or (record.lengths < 0).any():
            raise BadInput(f"damaged MRXS index: a negative offset or length in {record.describe()}")
        if ((record.files < 0) | (record.files >= self.files)).any():
            raise BadInput(f"damaged MRXS index: {record.describe()} names a data file Slidedat.ini does not list")


def _check_data(slide: MrxsSlide) -> None:
    """Every record inside its data file, and every data file longer than its header."""
    for number, size in enumerate(slide.data_sizes):
        if size < slide.data_header:
            raise BadInput(f"truncated MRXS data file {number}: shorter than its header")
    for record in (*slide.hier, *slide.nonhier):
        if not len(record.offsets):
            continue
        ends = record.offsets + record.lengths
        limits = np.asarray(slide.data_sizes, np.int64)[record.files]
        bad = np.nonzero(ends > limits)[0]
        if len(bad):
            number = int(record.files[bad[0]])
            raise BadInput(f"truncated or damaged MRXS data file {number}: {record.describe()} "
                           f"points past the end of the file")


def read_head(path: Path, start: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, start)
    finally:
        os.close(fd)
