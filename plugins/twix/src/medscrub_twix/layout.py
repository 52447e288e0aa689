"""The byte layout of a twix file: file header, measurement headers, buffers.

Only headers are read, never the k-space data.  Every offset here is an
absolute offset in the file.

VD/VE files start with a 10240-byte multi-raid file header (``u32 hdSize = 0,
u32 count``, then 64 entries of 152 bytes).  VB files have no file header:
the file is one measurement whose first ``u32`` is its header length.  A
measurement header is ``u32 headerLength, u32 nBuffers`` and then buffers,
each ``name\\0, u32 length, text``; the bytes after the last buffer up to
``headerLength`` are padding.  Readers guess the version from the first two
integers; here both structures are parsed and the one that holds together
wins.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field

from medscrub import BadInput

FILE_HEADER_SIZE = 10240
ENTRY_SIZE = 152
MAX_ENTRIES = 64
ENTRIES_END = 8 + MAX_ENTRIES * ENTRY_SIZE  # 9736
NAME_FIELD = 64  # patient and protocol name in a file-header entry
PATIENT_NAME_AT = 24  # inside an entry
PROTOCOL_NAME_AT = 88

VD_SCAN_HEADER = 192
VD_CHANNEL_HEADER = 32
VB_MDH = 128
ACQEND = 1 << 0
SYNCDATA = 1 << 5
DMA_MASK = (1 << 25) - 1

_BUFFER_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9_]{0,47}")
MAX_BUFFERS = 64


@dataclass(frozen=True)
class Buffer:
    name: str
    start: int  # first byte of the text
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class RaidEntry:
    index: int  # position in the file header, 0-based
    meas_id: int
    file_id: int
    offset: int
    length: int


@dataclass
class Measurement:
    number: int  # 1-based, in file order
    offset: int
    header_length: int
    buffers: list[Buffer]
    declared_end: int | None  # offset + length from the file header; None for VB
    entry: RaidEntry | None = None

    @property
    def header_end(self) -> int:
        return self.offset + self.header_length

    @property
    def padding_start(self) -> int:
        return self.buffers[-1].end if self.buffers else self.offset + 8


@dataclass
class Layout:
    version: str  # "VB" or "VD"
    size: int
    measurements: list[Measurement]
    entries: list[RaidEntry] = field(default_factory=list)
    truncated: str | None = None  # why the data ends early, if it does


def _u32(data: bytes, at: int) -> int:
    return struct.unpack_from("<I", data, at)[0]


def _read(fd: int, offset: int, size: int) -> bytes:
    return os.pread(fd, size, offset)


def _parse_buffers(fd: int, offset: int, size: int, strict: bool) -> tuple[int, list[Buffer]] | str:
    """Parse a measurement header at ``offset``; a reason string when it is not one."""
    head = _read(fd, offset, 8)
    if len(head) < 8:
        return f"the measurement header at byte {offset} is cut off by the end of the file"
    header_length, count = struct.unpack("<II", head)
    if not 1 <= count <= MAX_BUFFERS:
        return f"the measurement header at byte {offset} claims {count} buffers"
    if header_length < 8 + count * 6:
        return f"the measurement header at byte {offset} claims a header length of {header_length} bytes"
    if offset + header_length > size:
        return (f"the header length of the measurement at byte {offset} ({header_length} bytes) "
                f"runs past the end of the file ({size} bytes)")
    buffers: list[Buffer] = []
    at = offset + 8
    end = offset + header_length
    for k in range(count):
        probe = _read(fd, at, min(64, end - at))
        nul = probe.find(b"\0")
        name = probe[:nul] if nul > 0 else b""
        if not name or not _BUFFER_NAME.fullmatch(name) or nul + 5 > len(probe):
            return f"buffer {k + 1} of the measurement at byte {offset} has no valid name"
        length = _u32(probe, nul + 1)
        start = at + nul + 5
        if start + length > end:
            return (f"buffer {name.decode()} of the measurement at byte {offset} ({length} bytes) "
                    f"runs past its header ({header_length} bytes)")
        buffers.append(Buffer(name.decode(), start, length))
        at = start + length
    if strict and not any(b.name in ("Config", "Dicom", "Meas", "MeasYaps") for b in buffers):
        return f"the measurement at byte {offset} has none of the buffers Config, Dicom, Meas, MeasYaps"
    return header_length, buffers


def _vd_entries(head: bytes, size: int) -> list[RaidEntry] | str:
    if len(head) < ENTRIES_END:
        return "the file is shorter than a VD file header"
    hd_size, count = struct.unpack_from("<II", head, 0)
    if hd_size != 0:
        return "the file header size field is not 0"
    if not 1 <= count <= MAX_ENTRIES:
        return f"the file header lists {count} measurements (1 to 64 expected)"
    entries = []
    for i in range(count):
        at = 8 + i * ENTRY_SIZE
        meas_id, file_id, offset, length = struct.unpack_from("<IIQQ", head, at)
        if offset < ENTRIES_END:
            return f"measurement {i + 1} starts inside the file header (byte {offset})"
        if offset >= size:
            return f"measurement {i + 1} starts at byte {offset}, past the end of the file ({size} bytes)"
        if length == 0 and count > 1:
            return f"measurement {i + 1} has length 0"
        entries.append(RaidEntry(i, meas_id, file_id, offset, length))
    ordered = sorted(entries, key=lambda e: e.offset)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.offset + a.length > b.offset:
            return f"measurements {a.index + 1} and {b.index + 1} overlap"
    return entries


def sniff(path: os.PathLike | str) -> str | None:
    """"VD", "VB" or None: a cheap check for discovery, reading a few bytes."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < 16:
            return None
        head = _read(fd, 0, 32)
        hd_size, count = struct.unpack_from("<II", head, 0)
        if hd_size == 0 and 1 <= count <= MAX_ENTRIES and len(head) >= 24:
            # Enough to say "twix"; read_layout checks the rest and says what is wrong.
            offset = struct.unpack_from("<Q", head, 16)[0]
            if ENTRIES_END <= offset < size and _parse_buffers_head(fd, offset, size) is None:
                return "VD"
            return None
        if _parse_buffers_head(fd, 0, size) is None:
            return "VB"
        return None
    finally:
        os.close(fd)


def _parse_buffers_head(fd: int, offset: int, size: int) -> str | None:
    """Check the first buffer of a measurement header only (for discovery)."""
    head = _read(fd, offset, 80)
    if len(head) < 16:
        return "short"
    header_length, count = struct.unpack_from("<II", head, 0)
    if not 1 <= count <= MAX_BUFFERS or header_length < 16:
        return "counts"
    nul = head.find(b"\0", 8)
    name = head[8:nul] if nul > 8 else b""
    if name not in (b"Config", b"Dicom", b"Meas", b"MeasYaps", b"Phoenix", b"Spice"):
        return "name"
    if nul + 5 > len(head) or nul + 5 + _u32(head, nul + 1) > header_length:
        return "length"
    return None


def read_layout(path: os.PathLike | str, walk_vb: bool = True) -> Layout:
    """Parse the file header and every measurement header; raise BadInput."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise BadInput(f"cannot open: {e.strerror or e}") from None
    try:
        return _read_layout(fd, walk_vb)
    finally:
        os.close(fd)


def _read_layout(fd: int, walk_vb: bool) -> Layout:
    size = os.fstat(fd).st_size
    if size < 16:
        raise BadInput(f"not a twix file: only {size} bytes")
    head = _read(fd, 0, FILE_HEADER_SIZE)
    entries = _vd_entries(head, size)
    if isinstance(entries, str):
        vd_reason = entries
        vb = _parse_buffers(fd, 0, size, strict=True)
        if isinstance(vb, str):
            if _u32(head, 0) == 0:
                raise BadInput(f"not a readable VD twix file: {vd_reason}")
            raise BadInput(f"not a readable twix file: {vb}")
        header_length, buffers = vb
        meas = Measurement(1, 0, header_length, buffers, None)
        layout = Layout("VB", size, [meas])
        if walk_vb:
            layout.truncated = walk_to_acqend(fd, header_length, size, "VB")
        return layout
    measurements = []
    truncated = None
    for number, entry in enumerate(sorted(entries, key=lambda e: e.offset), start=1):
        parsed = _parse_buffers(fd, entry.offset, size, strict=True)
        if isinstance(parsed, str):
            raise BadInput(f"measurement {number}: {parsed}")
        header_length, buffers = parsed
        end = entry.offset + entry.length if entry.length else None
        if end is not None and entry.offset + header_length > end:
            raise BadInput(f"measurement {number}: the header length ({header_length} bytes) "
                           f"exceeds the measurement length ({entry.length} bytes)")
        meas = Measurement(number, entry.offset, header_length, buffers, end, entry)
        measurements.append(meas)
        if end is None:
            reason = walk_to_acqend(fd, entry.offset + header_length, size, "VD")
            if reason:
                truncated = f"measurement {number}: {reason}"
        elif end > size:
            truncated = (f"measurement {number} is cut off: it should end at byte {end}, "
                         f"the file ends at byte {size}")
    return Layout("VD", size, measurements, entries, truncated)


def walk_to_acqend(fd: int, start: int, size: int, version: str) -> str | None:
    """Follow the readout headers from ``start``; None when an ACQEND record
    closes the data, else why not.  Reads one small header per readout."""
    mdh = VD_SCAN_HEADER if version == "VD" else VB_MDH
    mask_at, cols_at = (40, 48) if version == "VD" else (20, 28)
    pos = start
    while pos + mdh <= size:
        block = _read(fd, pos, mdh)
        flags_dma = _u32(block, 0)
        mask = struct.unpack_from("<Q", block, mask_at)[0]
        if mask & ACQEND:
            return None
        if mask & SYNCDATA:
            step = flags_dma & DMA_MASK
        else:
            columns, channels = struct.unpack_from("<HH", block, cols_at)
            if version == "VD":
                step = VD_SCAN_HEADER + channels * (VD_CHANNEL_HEADER + 8 * columns)
            else:
                step = channels * (VB_MDH + 8 * columns)
        if step <= 0:
            return f"the readout at byte {pos} has no length; the data cannot be followed from there"
        pos += step
    return f"the data ends at byte {size} without an end-of-acquisition record"
