"""Reading the structure of a TIFF file without reading its images.

Classic TIFF, BigTIFF and Hamamatsu NDPI (classic TIFF whose header and
next-IFD offsets are 64-bit and whose IFDs are followed by the high 32 bits
of each entry's value field), little or big endian.  Only the IFDs and the
values a caller asks for are read; strips and tiles are never loaded.

Every offset is checked against the file size and every IFD chain against
loops, so a damaged file fails here with a one-line reason.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medscrub import BadInput

# TIFF field types: size in bytes of one value, struct code, numpy kind.
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_NUMPY = {1: "u1", 3: "u2", 4: "u4", 6: "i1", 8: "i2", 9: "i4", 11: "f4", 12: "f8", 13: "u4", 16: "u8", 17: "i8", 18: "u8"}
ASCII, SHORT, LONG, RATIONAL, UNDEFINED, LONG8 = 2, 3, 4, 5, 7, 16
TEXT_TYPES = (1, 2, 6, 7)  # byte-like types that can carry text

# Tags this package refers to by name.
NEW_SUBFILE_TYPE = 254
IMAGE_WIDTH = 256
IMAGE_LENGTH = 257
BITS_PER_SAMPLE = 258
COMPRESSION = 259
PHOTOMETRIC = 262
IMAGE_DESCRIPTION = 270
STRIP_OFFSETS = 273
SAMPLES_PER_PIXEL = 277
ROWS_PER_STRIP = 278
STRIP_BYTE_COUNTS = 279
PLANAR_CONFIG = 284
SOFTWARE = 305
DATETIME = 306
TILE_WIDTH = 322
TILE_LENGTH = 323
TILE_OFFSETS = 324
TILE_BYTE_COUNTS = 325
SUB_IFDS = 330
JPEG_TABLES = 347
XMP = 700
NDPI_FORMAT_FLAG = 65420
NDPI_SOURCE_LENS = 65421

MAX_IFDS = 100_000
MAX_ENTRIES = 4096

# (offset tag, byte count tag) pairs that locate image data.
DATA_TAGS = ((TILE_OFFSETS, TILE_BYTE_COUNTS), (STRIP_OFFSETS, STRIP_BYTE_COUNTS))


@dataclass
class Entry:
    tag: int
    type: int
    count: int
    pos: int  # where the 12- or 20-byte entry starts
    field: bytes  # the raw value/offset field (4 or 8 bytes)
    offset: int | None  # where an out-of-line value starts; None when inline

    @property
    def nbytes(self) -> int:
        return TYPE_SIZES[self.type] * self.count


@dataclass
class Ifd:
    offset: int
    entries: dict[int, Entry]
    next_pos: int  # where the next-IFD pointer is
    next: int
    nbytes: int  # the whole IFD block, NDPI high words included
    path: tuple[int, ...]  # (main index,) or (main index, sub-IFD entry index, position)
    subifds: list[list[Ifd]] = field(default_factory=list)

    def has(self, tag: int) -> bool:
        return tag in self.entries

    @property
    def tiled(self) -> bool:
        return TILE_OFFSETS in self.entries

    def describe(self) -> str:
        return "IFD " + ".".join(str(p) for p in self.path)


class TiffStructure:
    """The header and every IFD of a TIFF-like file, values read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.size = os.path.getsize(self.path)
        self._f = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._parse()
        except BaseException:
            self._f.close()
            raise

    # -- low level ----------------------------------------------------------
    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> TiffStructure:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise BadInput(f"truncated TIFF: {length} bytes at offset {offset} run past the end of the file ({self.size} bytes)")
        self._f.seek(offset)
        data = self._f.read(length)
        if len(data) != length:
            raise BadInput(f"truncated TIFF: short read at offset {offset}")
        return data

    def _unpack(self, code: str, data: bytes) -> tuple:
        return struct.unpack(self.bo + code, data)

    # -- parsing ------------------------------------------------------------
    def _parse(self) -> None:
        if self.size < 8:
            raise BadInput("truncated TIFF: shorter than a TIFF header")
        head = self.read(0, min(16, self.size))
        if head[:2] == b"II":
            self.bo = "<"
        elif head[:2] == b"MM":
            self.bo = ">"
        else:
            raise BadInput("not a TIFF file: no II/MM byte order mark")
        (version,) = self._unpack("H", head[2:4])
        self.ndpi = False
        if version == 43:
            self.big = True
            if len(head) < 16:
                raise BadInput("truncated BigTIFF header")
            bytesize, pad = self._unpack("HH", head[4:8])
            if bytesize != 8 or pad != 0:
                raise BadInput("bad BigTIFF header")
            (first,) = self._unpack("Q", head[8:16])
            self.header_size = 16
        elif version == 42:
            self.big = False
            (first,) = self._unpack("I", head[4:8])
            self.header_size = 8
            # NDPI: a classic file whose first-IFD offset is 64 bits wide and
            # whose first IFD, read in NDPI mode, carries the NDPI format tag.
            if len(head) >= 12 and self.bo == "<":
                (wide,) = self._unpack("Q", head[4:12])
                if self._probe_ndpi(wide):
                    self.ndpi = True
                    first = wide
                    self.header_size = 12
        else:
            raise BadInput(f"not a TIFF file: version {version}")
        self.first_pos = 4 if not self.big else 8
        self.ifds = self._chain(first, prefix=())
        if not self.ifds:
            raise BadInput("TIFF has no image directories")

    def _probe_ndpi(self, offset: int) -> bool:
        if offset < 12 or offset + 2 > self.size:
            return False
        try:
            ifd = self._read_ifd(offset, (0,), ndpi=True)
        except BadInput:
            return False
        entry = ifd.entries.get(NDPI_FORMAT_FLAG)
        return entry is not None and entry.count > 0

    def _chain(self, first: int, prefix: tuple[int, ...]) -> list[Ifd]:
        ifds: list[Ifd] = []
        seen: set[int] = set()
        offset = first
        while offset:
            if offset in seen:
                raise BadInput(f"damaged TIFF: IFD loop, the chain returns to offset {offset}")
            if len(ifds) >= MAX_IFDS:
                raise BadInput("too many IFDs")
            seen.add(offset)
            ifd = self._read_ifd(offset, (*prefix, len(ifds)), ndpi=self.ndpi)
            ifds.append(ifd)
            offset = ifd.next
        for ifd in ifds:
            sub = ifd.entries.get(SUB_IFDS)
            if sub is not None:
                for k, off in enumerate(self.ints(sub)):
                    ifd.subifds.append(self._chain(int(off), (*ifd.path, k)))
        return ifds

    def _read_ifd(self, offset: int, path: tuple[int, ...], ndpi: bool) -> Ifd:
        if offset < 8:
            raise BadInput(f"IFD offset {offset} points into the header")
        if offset >= self.size:
            raise BadInput(f"truncated or damaged TIFF: IFD offset {offset} is past the end of the file ({self.size} bytes)")
        count_size, entry_size, field_size = (8, 20, 8) if self.big else (2, 12, 4)
        (n,) = self._unpack("Q" if self.big else "H", self.read(offset, count_size))
        if n == 0 or n > MAX_ENTRIES:
            raise BadInput(f"IFD at offset {offset} has {n} entries")
        next_size = 8 if (self.big or ndpi) else 4
        block = self.read(offset + count_size, n * entry_size + next_size)
        highs = self.read(offset + count_size + n * entry_size + next_size, 4 * n) if ndpi else b""
        entries: dict[int, Entry] = {}
        for i in range(n):
            raw = block[i * entry_size:(i + 1) * entry_size]
            if self.big:
                tag, typ, count = self._unpack("HHQ", raw[:12])
            else:
                tag, typ, count = self._unpack("HHI", raw[:8])
            fld = raw[entry_size - field_size:]
            if typ not in TYPE_SIZES:
                raise BadInput(f"IFD at offset {offset}: tag {tag} has unknown type {typ}")
            nbytes = TYPE_SIZES[typ] * count
            value_offset = None
            if nbytes > field_size:
                (value_offset,) = self._unpack("Q" if self.big else "I", fld)
                if ndpi:
                    (high,) = self._unpack("I", highs[4 * i:4 * i + 4])
                    value_offset |= high << 32
                if value_offset + nbytes > self.size:
                    raise BadInput(f"truncated or damaged TIFF: the value of tag {tag} (IFD at {offset}) runs past the end of the file")
            elif ndpi and nbytes == 4 and typ in (LONG, 13):
                # a single 32-bit offset or count whose high word follows the IFD
                (high,) = self._unpack("I", highs[4 * i:4 * i + 4])
                if high:
                    fld = struct.pack("<Q", struct.unpack("<I", fld)[0] | high << 32)
            pos = offset + count_size + i * entry_size
            entries[tag] = Entry(tag, typ, count, pos, fld, value_offset)
        next_pos = offset + count_size + n * entry_size
        (nxt,) = self._unpack("Q" if next_size == 8 else "I", block[n * entry_size:])
        if nxt and (nxt >= self.size or nxt < 8):
            raise BadInput(f"truncated or damaged TIFF: next IFD offset {nxt} (IFD at {offset}) is past the end of the file ({self.size} bytes)")
        nbytes = count_size + n * entry_size + next_size + len(highs)
        return Ifd(offset, entries, next_pos, nxt, nbytes, path)

    # -- values -------------------------------------------------------------
    def raw(self, entry: Entry) -> bytes:
        """The value bytes of an entry, in file byte order."""
        if entry.offset is None:
            if len(entry.field) == 8 and not self.big and entry.nbytes == 4:
                return entry.field[:4] if self.bo == "<" else entry.field[4:]
            return entry.field[:entry.nbytes]
        return self.read(entry.offset, entry.nbytes)

    def ints(self, entry: Entry) -> np.ndarray:
        if entry.type not in (1, 3, 4, 6, 8, 9, 13, 16, 17, 18):
            raise BadInput(f"tag {entry.tag} is not an integer")
        if self.ndpi and entry.offset is None and entry.count == 1 and len(entry.field) == 8:
            return np.array([struct.unpack("<Q", entry.field)[0]], dtype=np.uint64)
        return np.frombuffer(self.raw(entry), dtype=np.dtype(_NUMPY[entry.type]).newbyteorder(self.bo)).astype(np.int64)

    def floats(self, entry: Entry) -> list[float]:
        data = self.raw(entry)
        if entry.type in (5, 10):
            pairs = self._unpack(("I" if entry.type == 5 else "i") * (2 * entry.count), data)
            return [a / b if b else float("nan") for a, b in zip(pairs[::2], pairs[1::2], strict=True)]
        return [float(v) for v in np.frombuffer(data, dtype=np.dtype(_NUMPY[entry.type]).newbyteorder(self.bo))]

    def value(self, ifd: Ifd, tag: int, default: int | None = None) -> int | None:
        entry = ifd.entries.get(tag)
        if entry is None or entry.count == 0:
            return default
        if entry.type in (5, 10, 11, 12):
            return int(self.floats(entry)[0])
        return int(self.ints(entry)[0])

    def text(self, ifd: Ifd, tag: int) -> bytes:
        """A byte-string value up to its first NUL (empty when absent)."""
        entry = ifd.entries.get(tag)
        if entry is None or entry.type not in TEXT_TYPES:
            return b""
        return self.raw(entry).split(b"\0", 1)[0]

    def data_ranges(self, ifd: Ifd) -> tuple[np.ndarray, np.ndarray]:
        """Offsets and byte counts of an IFD's strips or tiles, bounds-checked."""
        for off_tag, count_tag in DATA_TAGS:
            if off_tag in ifd.entries:
                if count_tag not in ifd.entries:
                    raise BadInput(f"{ifd.describe()}: tag {off_tag} without its byte counts")
                offsets = self.ints(ifd.entries[off_tag])
                counts = self.ints(ifd.entries[count_tag])
                if len(offsets) != len(counts):
                    raise BadInput(f"{ifd.describe()}: {len(offsets)} data offsets but {len(counts)} byte counts")
                used = counts > 0
                if used.any():
                    ends = offsets[used] + counts[used]
                    if (offsets[used] < 8).any() or int(ends.max()) > self.size:
                        raise BadInput(f"truncated or damaged TIFF: {ifd.describe()} has image data past the end of the file ({self.size} bytes)")
                return offsets, counts
        return np.zeros(0, np.int64), np.zeros(0, np.int64)

    def all_ifds(self) -> list[Ifd]:
        out: list[Ifd] = []

        def walk(chain: list[Ifd]) -> None:
            for ifd in chain:
                out.append(ifd)
                for sub in ifd.subifds:
                    walk(sub)

        walk(self.ifds)
        return out


def is_tiff_head(head: bytes) -> bool:
    return head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
