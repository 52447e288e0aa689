"""Planning a TIFF edit and applying it in one streaming pass.

A :class:`Rewrite` collects what changes: IFDs dropped from their chain,
tags removed or given new values, an IFD turned into a 1x1 placeholder or
given new image data (a replacement label, a macro with its label painted
over: one strip, over the old data when it fits, else appended).
:meth:`Rewrite.compile` turns that into a :class:`Plan`:

* every kept IFD is serialised again at its old offset (it never grows:
  removing tags only shortens it), with next pointers that skip the dropped
  IFDs in the width the format uses (4 bytes classic, 8 BigTIFF and NDPI);
* a new value is written over the old one when it fits, else appended;
* the *live* bytes are the header, the kept IFDs, their values and their
  strips and tiles.  Everything else -- dropped images, removed values, the
  tail of a shortened text, slack that no IFD points to -- is written as
  zeros, so no unlinked data survives.

:func:`apply` copies the live bytes with ``os.copy_file_range`` (in the
kernel, no Python buffers) and writes the patches between them; the output
is never in memory, whatever the slide size.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medscrub import BadInput

from .tiff import (
    BITS_PER_SAMPLE,
    COMPRESSION,
    IMAGE_DESCRIPTION,
    IMAGE_LENGTH,
    IMAGE_WIDTH,
    LONG,
    LONG8,
    NEW_SUBFILE_TYPE,
    PHOTOMETRIC,
    PLANAR_CONFIG,
    ROWS_PER_STRIP,
    SAMPLES_PER_PIXEL,
    SHORT,
    STRIP_BYTE_COUNTS,
    STRIP_OFFSETS,
    TYPE_SIZES,
    XMP,
    Ifd,
    TiffStructure,
)

CHUNK = 64 << 20  # bytes per copy_file_range call
# Tags that say how an image's pixels are stored, replaced together with its data: the
# basics, Predictor 317, ColorMap 320, the tile tags 322-325, ExtraSamples 338, SampleFormat
# 339, JPEGTables 347, the old-style JPEG tags 512-521 and the YCbCr tags 529-532.
IMAGE_DATA_TAGS = (
    BITS_PER_SAMPLE, COMPRESSION, PHOTOMETRIC, STRIP_OFFSETS, SAMPLES_PER_PIXEL, ROWS_PER_STRIP, STRIP_BYTE_COUNTS,
    PLANAR_CONFIG, 317, 320, 322, 323, 324, 325, 338, 339, 347, 512, 513, 514, 515, 517, 518, 519, 520, 521, 529,
    530, 531, 532,
)


@dataclass
class Value:
    """A new value for a tag: type, count and the bytes in file byte order."""

    type: int
    count: int
    data: bytes


@dataclass
class Plan:
    size: int  # of the output
    patches: list[tuple[int, bytes]]  # sorted, non-overlapping, all inside live bytes
    live_starts: np.ndarray  # merged, sorted live intervals [start, end)
    live_ends: np.ndarray
    # strips and tiles of kept images copied verbatim (merged): pixels, never text
    pixel_ranges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def zeroed(self) -> int:
        """Bytes of the output that are zeros because nothing points to them."""
        return int(self.size - (self.live_ends - self.live_starts).sum())


@dataclass
class Rewrite:
    tiff: TiffStructure
    dropped: set[tuple[int, ...]] = field(default_factory=set)
    removed: dict[tuple[int, ...], set[int]] = field(default_factory=dict)
    values: dict[tuple[int, ...], dict[int, Value]] = field(default_factory=dict)
    data_patches: list[tuple[int, bytes]] = field(default_factory=list)
    placeholders: dict[tuple[int, ...], int] = field(default_factory=dict)  # path -> pixel offset
    images: dict[tuple[int, ...], tuple[int, int]] = field(default_factory=dict)  # path -> new strip (offset, size)
    tail: bytearray = field(default_factory=bytearray)  # appended after the old end of the file

    def append(self, data: bytes) -> int:
        """Reserve room after the end of the file for ``data``; its offset."""
        offset = _align(self.tiff.size) + len(self.tail)
        self.tail += data + b"\0" * (-len(data) % 8)
        return offset

    # -- what changes ----------------------------------------------------------
    def drop(self, ifd: Ifd) -> None:
        self.dropped.add(ifd.path)

    def remove(self, ifd: Ifd, tag: int) -> None:
        if tag in ifd.entries:
            self.removed.setdefault(ifd.path, set()).add(tag)
            self.values.get(ifd.path, {}).pop(tag, None)

    def set(self, ifd: Ifd, tag: int, value: Value) -> None:
        self.values.setdefault(ifd.path, {})[tag] = value
        self.removed.get(ifd.path, set()).discard(tag)

    def set_text(self, ifd: Ifd, tag: int, text: bytes) -> None:
        """A new byte-string value (NUL-terminated for ASCII), never longer than the old."""
        old = ifd.entries[tag]
        data = text if old.type != 2 else text.rstrip(b"\0") + b"\0"
        if len(data) > old.nbytes:
            raise ValueError(f"new value of tag {tag} is longer than the old")
        self.set(ifd, tag, Value(old.type, len(data), data))

    def placeholder(self, ifd: Ifd, description: bytes) -> None:
        """Turn a stripped IFD into a 1x1 white grey image that keeps only its
        description and XMP; used where an associated image must go but its
        IFD must stay (Ventana keeps the slide's XMP in IFD 0)."""
        offsets, counts = self.tiff.data_ranges(ifd)
        used = np.nonzero(counts > 0)[0]
        if not len(used):
            raise BadInput(f"{ifd.describe()} has no image data to replace")
        pixel = int(offsets[used[0]])
        self.placeholders[ifd.path] = pixel
        keep = {IMAGE_DESCRIPTION, XMP}
        for tag in ifd.entries:
            if tag not in keep:
                self.remove(ifd, tag)
        s = self.pack
        for tag, typ, value in (
            (NEW_SUBFILE_TYPE, LONG, 1), (IMAGE_WIDTH, LONG, 1), (IMAGE_LENGTH, LONG, 1),
            (BITS_PER_SAMPLE, SHORT, 8), (COMPRESSION, SHORT, 1), (PHOTOMETRIC, SHORT, 1),
            (STRIP_OFFSETS, LONG, pixel), (SAMPLES_PER_PIXEL, SHORT, 1), (ROWS_PER_STRIP, LONG, 1),
            (STRIP_BYTE_COUNTS, LONG, 1), (PLANAR_CONFIG, SHORT, 1),
        ):
            if typ == LONG and value > 0xFFFFFFFF:
                raise BadInput("placeholder image beyond 4 GiB in a classic TIFF")
            self.set(ifd, tag, Value(typ, 1, s("H" if typ == SHORT else "I", value)))
        self.data_patches.append((pixel, b"\xff"))
        if IMAGE_DESCRIPTION in ifd.entries:
            self.set_text(ifd, IMAGE_DESCRIPTION, description)
        else:
            self.set(ifd, IMAGE_DESCRIPTION, Value(2, len(description) + 1, description + b"\0"))

    def replace_image(self, ifd: Ifd, width: int, height: int, jpeg: bytes) -> None:
        """Give a stripped IFD a new single-strip 8-bit grey JPEG image; the
        old strips become unreferenced (and zeroed)."""
        where = self._place_strip(ifd, jpeg)
        keep = {IMAGE_DESCRIPTION, NEW_SUBFILE_TYPE}
        for tag in ifd.entries:
            if tag not in keep:
                self.remove(ifd, tag)
        for tag, value in (
            (IMAGE_WIDTH, self.long(width)), (IMAGE_LENGTH, self.long(height)), (BITS_PER_SAMPLE, self.short(8)),
            (COMPRESSION, self.short(7)), (PHOTOMETRIC, self.short(1)), (STRIP_OFFSETS, self.offset_value(where)),
            (SAMPLES_PER_PIXEL, self.short(1)), (ROWS_PER_STRIP, self.long(height)),
            (STRIP_BYTE_COUNTS, self.long(len(jpeg))), (PLANAR_CONFIG, self.short(1)),
        ):
            self.set(ifd, tag, value)

    def replace_strips(self, ifd: Ifd, data: bytes, tags: dict[int, Value]) -> None:
        """Give an image IFD one new strip of the same width and height:
        ``tags`` describe its encoding (compression, photometric, samples,
        ...); the old image data and every structure tag that ``tags`` does
        not name go, while the IFD's other tags (description, resolution,
        vendor tags) stay for the scrubber.  Never adds a tag the IFD lacks
        beyond ``tags``, so the IFD does not grow."""
        where = self._place_strip(ifd, data)
        for tag in IMAGE_DATA_TAGS:
            if tag not in tags:
                self.remove(ifd, tag)
        for tag, value in tags.items():
            self.set(ifd, tag, value)
        self.set(ifd, STRIP_OFFSETS, self.offset_value(where))
        self.set(ifd, STRIP_BYTE_COUNTS, self.long(len(data)))
        if ROWS_PER_STRIP in ifd.entries:
            self.set(ifd, ROWS_PER_STRIP, self.long(self.tiff.value(ifd, IMAGE_LENGTH, 0) or 0))

    def _place_strip(self, ifd: Ifd, data: bytes) -> int:
        """Where new image data for ``ifd`` goes: over its old strips or tiles
        when they are contiguous and large enough, else after the end of the
        file.  Whatever of the old data is not overwritten is zeroed."""
        offsets, counts = self.tiff.data_ranges(ifd)
        used = counts > 0
        offsets, counts = offsets[used], counts[used]
        order = np.argsort(offsets)
        contiguous = len(order) and bool(np.all(offsets[order][1:] == (offsets[order] + counts[order])[:-1]))
        if contiguous and len(data) <= int(counts.sum()):
            where = int(offsets[order[0]])
            self.data_patches.append((where, data))
        else:
            where = self.append(data)
        self.images[ifd.path] = (where, len(data))
        return where

    def short(self, *values: int) -> Value:
        return Value(SHORT, len(values), self.pack(f"{len(values)}H", *values))

    def long(self, value: int) -> Value:
        if value > 0xFFFFFFFF:
            raise BadInput(f"a value of {value} does not fit a TIFF LONG")
        return Value(LONG, 1, self.pack("I", value))

    def offset_value(self, offset: int) -> Value:
        """A single image data offset in the width the file allows: LONG8 in
        BigTIFF, a LONG with its high word after the IFD in NDPI, a LONG below
        4 GiB in classic TIFF."""
        if offset <= 0xFFFFFFFF:
            return self.long(offset)
        if self.tiff.big:
            return Value(LONG8, 1, self.pack("Q", offset))
        if self.tiff.ndpi:
            return Value(LONG, 1, struct.pack("<Q", offset))  # low word in the entry, high word after the IFD
        raise BadInput("new image data would land beyond 4 GiB in a classic TIFF")

    def pack(self, code: str, *values) -> bytes:
        """``values`` packed in the file's byte order."""
        return struct.pack(self.tiff.bo + code, *values)

    # -- compiling -------------------------------------------------------------
    def kept(self, chain: list[Ifd]) -> list[Ifd]:
        return [ifd for ifd in chain if ifd.path not in self.dropped]

    def compile(self) -> Plan:
        t = self.tiff
        patches: list[tuple[int, bytes]] = []
        live: list[tuple[int, int]] = [(0, t.header_size)]
        data_starts: list[np.ndarray] = []
        data_ends: list[np.ndarray] = []
        verbatim_starts: list[np.ndarray] = []  # image data copied as it is
        verbatim_ends: list[np.ndarray] = []
        append_at = _align(t.size)

        def place(data: bytes, old_offset: int | None, old_nbytes: int) -> int:
            if old_offset is not None and len(data) <= old_nbytes:
                patches.append((old_offset, data))
                live.append((old_offset, old_offset + len(data)))
                return old_offset
            return self.append(data)

        def emit_chain(chain: list[Ifd]) -> int:
            kept = self.kept(chain)
            for i, ifd in enumerate(kept):
                nxt = kept[i + 1].offset if i + 1 < len(kept) else 0
                emit_ifd(ifd, nxt)
            return kept[0].offset if kept else 0

        def emit_ifd(ifd: Ifd, nxt: int) -> None:
            removed = self.removed.get(ifd.path, set())
            new = self.values.get(ifd.path, {})
            tags = sorted((set(ifd.entries) - removed) | set(new))
            field_size = 8 if t.big else 4
            rows: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value field
            highs: list[int] = []
            for tag in tags:
                if tag in new:
                    v = new[tag]
                    old = ifd.entries.get(tag)
                    nbytes = TYPE_SIZES[v.type] * v.count
                    if t.ndpi and len(v.data) == 8 and nbytes == 4:  # an NDPI offset above 4 GiB
                        low, high = struct.unpack("<II", v.data)
                        fld = struct.pack("<I", low)
                    elif nbytes <= field_size:
                        fld, high = v.data.ljust(field_size, b"\0"), 0
                    else:
                        off = place(v.data, old.offset if old else None, old.nbytes if old else 0)
                        fld, high = self._offset_field(off)
                    rows.append((tag, v.type, v.count, fld))
                    highs.append(high)
                else:
                    e = ifd.entries[tag]
                    if e.offset is not None:
                        live.append((e.offset, e.offset + e.nbytes))
                        fld, high = self._offset_field(e.offset)
                    elif len(e.field) == 8 and not t.big:  # NDPI single value with a high word
                        low, high = struct.unpack("<II", e.field)
                        fld = struct.pack("<I", low)
                    else:
                        fld, high = e.field, 0
                    rows.append((tag, e.type, e.count, fld))
                    highs.append(high)
            # image data of the kept IFD
            if ifd.path in self.placeholders:
                pixel = self.placeholders[ifd.path]
                data_starts.append(np.array([pixel]))
                data_ends.append(np.array([pixel + 1]))
            elif ifd.path in self.images:
                where, length = self.images[ifd.path]
                data_starts.append(np.array([where]))
                data_ends.append(np.array([where + length]))
            else:
                offsets, counts = t.data_ranges(ifd)
                used = counts > 0
                data_starts.append(offsets[used])
                data_ends.append(offsets[used] + counts[used])
                verbatim_starts.append(offsets[used])
                verbatim_ends.append(offsets[used] + counts[used])
            block = self._ifd_block(rows, highs, nxt)
            if len(block) > ifd.nbytes:
                raise BadInput(f"{ifd.describe()} would grow; cannot rewrite it in place")
            patches.append((ifd.offset, block))
            live.append((ifd.offset, ifd.offset + len(block)))
            for sub in ifd.subifds:
                emit_chain(sub)

        first = emit_chain(t.ifds)
        if not first:
            raise BadInput("nothing would be left of the slide")
        if t.ndpi:
            patches.append((4, struct.pack("<Q", first)))
        else:
            patches.append((t.first_pos, self.pack("Q" if t.big else "I", first)))
        for offset, data in self.data_patches:
            patches.append((offset, data))
        size = t.size
        appended = bytes(self.tail)
        if appended:
            patches.append((append_at, appended))
            live.append((append_at, append_at + len(appended)))
            size = append_at + len(appended)
        starts = np.concatenate([np.array([a for a, _ in live], np.int64), *[a.astype(np.int64) for a in data_starts]])
        ends = np.concatenate([np.array([b for _, b in live], np.int64), *[b.astype(np.int64) for b in data_ends]])
        live_starts, live_ends = merge_intervals(starts, ends)
        if not appended:
            size = int(live_ends[-1])  # a dropped image at the end is cut off, not zeroed
        patches = _check_patches(patches)
        return Plan(size, patches, live_starts, live_ends, _pixel_ranges(verbatim_starts, verbatim_ends, patches))

    def _offset_field(self, offset: int) -> tuple[bytes, int]:
        t = self.tiff
        if t.big:
            return self.pack("Q", offset), 0
        if t.ndpi:
            return struct.pack("<I", offset & 0xFFFFFFFF), offset >> 32
        if offset > 0xFFFFFFFF:
            raise BadInput("a value would land beyond 4 GiB in a classic TIFF")
        return self.pack("I", offset), 0

    def _ifd_block(self, rows: list[tuple[int, int, int, bytes]], highs: list[int], nxt: int) -> bytes:
        t = self.tiff
        out = bytearray()
        if t.big:
            out += self.pack("Q", len(rows))
            for tag, typ, count, fld in rows:
                out += self.pack("HHQ", tag, typ, count) + fld
            out += self.pack("Q", nxt)
        else:
            out += self.pack("H", len(rows))
            for tag, typ, count, fld in rows:
                out += self.pack("HHI", tag, typ, count) + fld
            if t.ndpi:
                out += struct.pack("<Q", nxt)
                out += b"".join(struct.pack("<I", h) for h in highs)
            else:
                out += self.pack("I", nxt)
        return bytes(out)


def _align(n: int) -> int:
    return (n + 7) // 8 * 8


def merge_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, disjoint intervals covering the union of [starts, ends)."""
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(len(starts), bool)
    new[1:] = starts[1:] > reach[:-1]
    idx = np.nonzero(new)[0]
    out_starts = starts[idx]
    out_ends = np.append(reach[idx[1:] - 1], reach[-1]) if len(idx) else reach[:0]
    return out_starts, out_ends


def _pixel_ranges(starts: list[np.ndarray], ends: list[np.ndarray],
                  patches: list[tuple[int, bytes]]) -> list[tuple[int, int]]:
    """Merged ranges of verbatim image data, minus every patched byte."""
    if not starts:
        return []
    merged_starts, merged_ends = merge_intervals(np.concatenate(starts).astype(np.int64),
                                                 np.concatenate(ends).astype(np.int64))
    out: list[tuple[int, int]] = []
    cuts = sorted((o, o + len(d)) for o, d in patches)
    k = 0
    for a, b in zip(merged_starts.tolist(), merged_ends.tolist(), strict=True):
        while k < len(cuts) and cuts[k][1] <= a:
            k += 1
        j = k
        while j < len(cuts) and cuts[j][0] < b:
            if cuts[j][0] > a:
                out.append((a, cuts[j][0]))
            a = max(a, cuts[j][1])
            j += 1
        if a < b:
            out.append((a, b))
    return out


def _check_patches(patches: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Sort the patches; an overlap of two different patches is a bug, the
    same bytes twice (a value shared by two IFDs) is merged."""
    patches = sorted((o, d) for o, d in patches if d)
    out: list[tuple[int, bytes]] = []
    for offset, data in patches:
        if out and offset < out[-1][0] + len(out[-1][1]):
            prev_off, prev = out[-1]
            if offset == prev_off and data == prev:
                continue
            if offset == prev_off and prev.startswith(data):
                continue
            raise BadInput(f"two edits overlap at offset {offset}; the file shares structures in a way this plugin cannot edit")
        out.append((offset, data))
    return out


# -- applying ----------------------------------------------------------------------


def apply(plan: Plan, source: Path, target: Path | None) -> None:
    """Write ``source`` edited by ``plan`` to ``target``; with ``target`` None,
    edit ``source`` in place (only patches and zeros are written)."""
    in_place = target is None
    src = os.open(source, os.O_RDWR if in_place else os.O_RDONLY)
    try:
        dst = src if in_place else os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _apply(plan, src, dst, in_place)
            os.ftruncate(dst, plan.size)
        finally:
            if dst != src:
                os.close(dst)
    finally:
        os.close(src)


def _apply(plan: Plan, src: int, dst: int, in_place: bool) -> None:
    patches = plan.patches
    p = 0  # next patch
    pos = 0
    for start, end in zip(plan.live_starts.tolist(), plan.live_ends.tolist(), strict=True):
        if in_place and start > pos:
            _zero(dst, pos, start)
        pos = start
        while pos < end:
            if p < len(patches) and patches[p][0] < end:
                off, data = patches[p]
                if off < pos:
                    raise BadInput("internal error: a patch outside the live bytes")
                if not in_place:
                    _copy(src, dst, pos, off)
                os.pwrite(dst, data, off)
                pos = off + len(data)
                p += 1
            else:
                if not in_place:
                    _copy(src, dst, pos, end)
                pos = end
        pos = max(pos, end)
    if p != len(patches):
        raise BadInput("internal error: a patch outside the live bytes")
    if in_place and plan.size > pos:
        _zero(dst, pos, plan.size)


def _copy(src: int, dst: int, start: int, end: int) -> None:
    pos = start
    while pos < end:
        n = min(CHUNK, end - pos)
        try:
            done = os.copy_file_range(src, dst, n, pos, pos)
        except OSError:  # no copy_file_range across these file systems: copy through a buffer
            done = len(_buffered(src, dst, pos, n))
        if done <= 0:
            raise BadInput(f"the input ended at offset {pos} while it was being copied")
        pos += done


def _buffered(src: int, dst: int, pos: int, n: int) -> bytes:
    data = os.pread(src, min(n, 8 << 20), pos)
    os.pwrite(dst, data, pos)
    return data


def _zero(fd: int, start: int, end: int) -> None:
    block = bytes(min(8 << 20, end - start))
    pos = start
    while pos < end:
        n = min(len(block), end - pos)
        os.pwrite(fd, block[:n], pos)
        pos += n
