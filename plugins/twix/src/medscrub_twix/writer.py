"""Stream a twix file to its output with the headers patched.

The output is built front to back: header regions are read, patched in
memory and written; data regions are copied by the kernel
(``os.copy_file_range``, falling back to a read/write loop with one reused
buffer), so memory stays at the size of one measurement header whatever the
file size.  No original header byte is ever written to the output, not even
briefly.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from medscrub import MedscrubError

from .reader import TwixFile

COPY_CHUNK = 64 << 20  # bytes per copy_file_range call
BUFFER = 8 << 20  # the fallback's read buffer


def _segments(data: TwixFile) -> list[tuple[str, int, int]]:
    """("patch" | "zero" | "copy", start, end) covering the input in order."""
    layout = data.layout
    marks: list[tuple[str, int, int]] = []
    if layout.version == "VD":
        marks.append(("patch", 0, min(m.offset for m in layout.measurements)))
    for m in layout.measurements:
        marks.append(("patch", m.offset, m.header_end))
    for a, b in data.zeros:
        marks.append(("zero", a, b))
    marks.sort(key=lambda s: s[1])
    out: list[tuple[str, int, int]] = []
    at = 0
    for kind, a, b in marks:
        if a > at:
            out.append(("copy", at, a))
        out.append((kind, a, b))
        at = b
    if at < layout.size:
        out.append(("copy", at, layout.size))
    return [(k, a, min(b, layout.size)) for k, a, b in out if a < layout.size and b > a]


def _patched(fd: int, start: int, end: int, patches: dict[int, bytes]) -> bytes:
    block = bytearray(os.pread(fd, end - start, start))
    if len(block) != end - start:
        raise MedscrubError(f"the input changed while it was read (short header at byte {start})")
    for at, raw in patches.items():
        if start <= at < end:
            block[at - start:at - start + len(raw)] = raw
    return bytes(block)


def _write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


class _Copier:
    def __init__(self) -> None:
        self.kernel = hasattr(os, "copy_file_range")
        self.buffer: bytearray | None = None

    def copy(self, src: int, dst: int, start: int, end: int) -> int:
        """Copy [start, end) to the same offsets; the bytes copied (fewer at EOF)."""
        at = start
        while at < end and self.kernel:
            try:
                n = os.copy_file_range(src, dst, min(COPY_CHUNK, end - at), at, at)
            except OSError as e:
                if e.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                    self.kernel = False
                    break
                raise
            if n == 0:
                return at - start
            at += n
        if at < end:
            if self.buffer is None:
                self.buffer = bytearray(BUFFER)
            view = memoryview(self.buffer)
            while at < end:
                want = min(BUFFER, end - at)
                n = os.preadv(src, [view[:want]], at)
                if n == 0:
                    break
                _write_all(dst, view[:n], at)
                at += n
        return at - start


def data_ranges(data: TwixFile) -> list[tuple[int, int]]:
    """The byte ranges copied verbatim: readouts (scan and channel headers and
    complex samples), no header text."""
    return [(a, b) for kind, a, b in _segments(data) if kind == "copy"]


def write_twix(data: TwixFile, target: Path) -> int:
    """Write the scrubbed file to ``target``; the number of bytes written."""
    src = os.open(data.path, os.O_RDONLY)
    try:
        if os.fstat(src).st_size != data.layout.size:
            raise MedscrubError("the input changed size since it was read")
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            copier = _Copier()
            written = 0
            for kind, a, b in _segments(data):
                if kind == "patch":
                    _write_all(dst, _patched(src, a, b, data.patches), a)
                    written = b
                elif kind == "zero":
                    zeros = bytes(min(b - a, BUFFER))
                    at = a
                    while at < b:
                        _write_all(dst, zeros[: b - at], at)
                        at += min(len(zeros), b - at)
                    written = b
                else:
                    n = copier.copy(src, dst, a, b)
                    written = a + n
                    if n < b - a:
                        break
            os.ftruncate(dst, written)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return written
