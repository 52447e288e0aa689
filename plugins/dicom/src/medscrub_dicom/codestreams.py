"""Which bytes of encapsulated pixel data are entropy-coded samples.

The in-run leak check searches every byte of an output except the ranges a
writer declares as sample data.  In compressed pixel data text can sit in a
codestream's marker segments (JPEG APPn and COM, JPEG 2000 COM) but not in
its entropy-coded data, which is nearly all of its bytes.  These functions
find the entropy-coded ranges of fragments that each hold one whole
codestream (JPEG, JPEG-LS, JPEG 2000, HTJ2K) or one RLE frame; whatever they
cannot parse to its end, or what lies outside those ranges, is searched.
"""

from __future__ import annotations

import re

_ITEM = b"\xfe\xff\x00\xe0"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
# After 0xFF in entropy-coded data: 0x00 (stuffing, JPEG), a byte below 0x80
# (JPEG-LS), RSTn (0xD0-0xD7) or fill (0xFF) continue it; a marker code from
# 0xC0 up ends it (APPn, COM, DNL, DHT, EOI, the next SOS, ...).
_JPEG_END = re.compile(rb"\xff[\xc0-\xcf\xd8-\xfe]")


def _be16(data: bytes, at: int) -> int:
    return (data[at] << 8) | data[at + 1]


def jpeg_ranges(data: bytes) -> list[tuple[int, int]] | None:
    """Entropy-coded ranges of one JPEG or JPEG-LS codestream (SOI to EOI)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    n, pos, out = len(data), 2, []
    while pos + 1 < n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill before a marker
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            return out
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            pos += 2
            continue
        if pos + 4 > n:
            return None
        end = pos + 2 + _be16(data, pos + 2)
        if end > n or end < pos + 4:
            return None
        if marker == 0xDA:  # SOS: its header, then entropy-coded data up to the next marker
            found = _JPEG_END.search(data, end)
            if found is None:
                return None
            out.append((end, found.start()))
            pos = found.start()
        else:
            pos = end
    return None  # no EOI: not a whole codestream


def j2k_ranges(data: bytes) -> list[tuple[int, int]] | None:
    """Tile-part data ranges (after SOD) of one JPEG 2000 codestream (SOC to EOC)."""
    if not data.startswith(b"\xff\x4f\xff\x51"):
        return None
    n, pos, out = len(data), 2, []
    eoc = data.rfind(b"\xff\xd9")
    while pos + 1 < n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xD9:  # EOC
            return out
        if pos + 4 > n:
            return None
        segment = _be16(data, pos + 2)
        if marker != 0x90:  # a main header marker segment (SIZ, COD, QCD, COM, ...)
            if segment < 2:
                return None
            pos += 2 + segment
            continue
        # SOT: Lsot, Isot, Psot (the tile-part's length from SOT on; 0: up to EOC), TPsot, TNsot
        if segment != 10 or pos + 12 > n:
            return None
        psot = int.from_bytes(data[pos + 6:pos + 10], "big")
        end = pos + psot if psot else eoc
        if end <= pos or end > n:
            return None
        at = pos + 12
        while True:  # the tile-part header, up to SOD
            if at + 2 > end or data[at] != 0xFF:
                return None
            if data[at + 1] == 0x93:  # SOD
                at += 2
                break
            if at + 4 > end or _be16(data, at + 2) < 2:
                return None
            at += 2 + _be16(data, at + 2)
        out.append((at, end))
        pos = end
    return None


def rle_ranges(data: bytes) -> list[tuple[int, int]] | None:
    """The segments of one RLE Lossless frame (after its 64-byte header)."""
    if len(data) < 64:
        return None
    count = int.from_bytes(data[:4], "little")
    offsets = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "little") for i in range(count)] if 1 <= count <= 15 else []
    if not offsets or offsets[0] != 64 or offsets != sorted(offsets) or offsets[-1] > len(data):
        return None
    return [(64, len(data))]


def sample_ranges(value: bytes, transfer_syntax: str) -> list[tuple[int, int]]:
    """Entropy-coded ranges in an encapsulated Pixel Data value (its items,
    without the sequence delimiter), as offsets into ``value``.  A frame may
    span several fragments: a JPEG or JPEG 2000 frame starts at a fragment
    that starts with SOI or SOC, an RLE frame is one fragment."""
    rle = transfer_syntax == RLE_LOSSLESS
    fragments: list[tuple[int, int]] = []  # (start in value, length), the offset table left out
    n, pos = len(value), 0
    while pos + 8 <= n and value[pos:pos + 4] == _ITEM:
        length = int.from_bytes(value[pos + 4:pos + 8], "little")
        if length == 0xFFFFFFFF or pos + 8 + length > n:
            break
        if pos:  # the first item is the basic offset table
            fragments.append((pos + 8, length))
        pos += 8 + length
    frames: list[list[tuple[int, int]]] = []
    for start, length in fragments:
        if rle or not frames or value[start:start + 2] in (b"\xff\xd8", b"\xff\x4f"):
            frames.append([])
        frames[-1].append((start, length))
    out: list[tuple[int, int]] = []
    for frame in frames:
        data = b"".join(value[a:a + n] for a, n in frame) if len(frame) > 1 else value[frame[0][0]:sum(frame[0])]
        found = rle_ranges(data) if rle else (jpeg_ranges(data) or j2k_ranges(data))
        for a, b in found or ():
            out += _in_value(frame, a, b)
    return out


def _in_value(frame: list[tuple[int, int]], a: int, b: int) -> list[tuple[int, int]]:
    """A range of a frame's joined fragments as ranges of the Pixel Data
    value, split where an item header lies between two fragments."""
    out, at = [], 0
    for start, length in frame:
        lo, hi = max(a, at), min(b, at + length)
        if hi > lo:
            out.append((start + lo - at, start + hi - at))
        at += length
    return out
