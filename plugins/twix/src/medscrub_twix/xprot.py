"""Find field values in twix header text, in both of its syntaxes.

XProtocol (Config, Dicom, Meas, Phoenix, Spice) writes a field as
``<ParamString."Name"> { ... }`` on one line or on several, with attributes
(``<Visible> "true"``, ``<MinSize> 1``, ``<Precision> 6``, ``<Default>
<ParamString.""> { }``) mixed in with the values, and arrays as nested
``{ }``.  ASCCONV (MeasYaps and the ASCCONV part of Phoenix) writes
``path.to.tName = "value"`` one per line.

A value is located by its byte span (inside the quotes for strings) so that a
same-length replacement can be written over it without touching anything
else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .layout import Buffer, Measurement

_PARAM = re.compile(rb'<Param\w*\."(\w*)">')
_TOKEN = re.compile(rb'"(?:[^"]|"")*"|<[^<>]*>|[{}]|[^\s{}<>"]+')
_ASCCONV = re.compile(rb"### ASCCONV BEGIN[^\n]*\n(.*?)### ASCCONV END ###", re.S)
_ASCLINE = re.compile(rb'^[ \t]*([A-Za-z_][\w.\[\]]*)[ \t]*=[ \t]*("(?:[^"\n]|"")*"|[^\s#]+)', re.M)
_INDEX = re.compile(r"\[\d+\]")
STRING = re.compile(rb'"(?:[^"\n]|"")*"')


@dataclass(frozen=True)
class Span:
    start: int  # absolute offset in the file
    end: int
    quoted: bool


@dataclass(frozen=True)
class Field:
    buffer: str
    name: str  # as written: "tPatientName", "sProtConsistencyInfo.tBaselineString"
    syntax: str  # "xprot" or "ascconv"
    spans: tuple[Span, ...]

    @property
    def short(self) -> str:
        """The last name of an ASCCONV path, without array indices."""
        return _INDEX.sub("", self.name.rsplit(".", 1)[-1])


def _skip_block(text: bytes, brace: int) -> int:
    """The offset after the ``}`` that closes the ``{`` at ``brace``."""
    depth = 0
    for m in _TOKEN.finditer(text, brace):
        tok = m.group()
        if tok == b"{":
            depth += 1
        elif tok == b"}":
            depth -= 1
            if depth == 0:
                return m.end()
    return len(text)


def _next(text: bytes, pos: int) -> re.Match[bytes] | None:
    return _TOKEN.search(text, pos)


def _block_values(text: bytes, brace: int) -> list[tuple[int, int, bool]]:
    """Value spans (relative to ``text``) inside the block that opens at ``brace``."""
    values: list[tuple[int, int, bool]] = []
    depth = 0
    pos = brace
    while True:
        m = _next(text, pos)
        if m is None:
            return values
        tok = m.group()
        pos = m.end()
        if tok == b"{":
            depth += 1
        elif tok == b"}":
            depth -= 1
            if depth == 0:
                return values
        elif tok.startswith(b"<"):
            if b'."' in tok:  # a nested parameter and its block
                n = _next(text, pos)
                if n is not None and n.group() == b"{":
                    pos = _skip_block(text, n.start())
                continue
            n = _next(text, pos)  # an attribute and its value
            if n is None:
                return values
            if n.group() == b"{":
                pos = _skip_block(text, n.start())
            elif n.group().startswith(b"<") and b'."' in n.group():
                pos = n.end()
                b = _next(text, pos)
                if b is not None and b.group() == b"{":
                    pos = _skip_block(text, b.start())
            else:
                pos = n.end()
        elif tok.startswith(b'"'):
            values.append((m.start() + 1, m.end() - 1, True))
        else:
            values.append((m.start(), m.end(), False))


def buffer_fields(header: bytes, base: int, buffer: Buffer, wanted: Callable[[str], bool]) -> Iterator[Field]:
    """Fields of one buffer whose name ``wanted`` accepts.  ``header`` holds
    the measurement header and starts at file offset ``base``."""
    lo, hi = buffer.start - base, buffer.end - base
    text = header[lo:hi]
    for m in _PARAM.finditer(text):
        name = m.group(1).decode("latin-1")
        if not name or not wanted(name):
            continue
        n = _next(text, m.end())
        if n is None or n.group() != b"{":
            continue
        spans = tuple(Span(base + lo + s, base + lo + e, q) for s, e, q in _block_values(text, n.start()))
        yield Field(buffer.name, name, "xprot", spans)
    for region in _ASCCONV.finditer(text):
        for m in _ASCLINE.finditer(text, region.start(1), region.end(1)):
            name = m.group(1).decode("latin-1")
            short = _INDEX.sub("", name.rsplit(".", 1)[-1])
            if not (wanted(name) or wanted(short)):
                continue
            s, e = m.span(2)
            quoted = text[s:s + 1] == b'"'
            if quoted:
                s, e = s + 1, e - 1
            yield Field(buffer.name, name, "ascconv", (Span(base + lo + s, base + lo + e, quoted),))


def measurement_fields(header: bytes, meas: Measurement, wanted: Callable[[str], bool]) -> list[Field]:
    out: list[Field] = []
    for buffer in meas.buffers:
        out.extend(buffer_fields(header, meas.offset, buffer, wanted))
    return out


def unquote(raw: bytes) -> str:
    return raw.replace(b'""', b'"').decode("latin-1")
