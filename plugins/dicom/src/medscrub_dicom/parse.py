"""Reading a DICOM file into the very dataset ``dcmread(path, force=True)`` builds, faster.

pydicom reads a file element by element through a generator that makes
several file calls per element, which costs more than the profile's whole
walk.  :func:`read_file` reads the file in windows of :data:`WINDOW` bytes
(a value that does not fit, such as the pixel data, in one read of its own)
and splits the usual elements (defined length, a known VR, inside the file)
out of the bytes itself, into the same
:class:`~pydicom.dataelem.RawDataElement` objects at the same positions.
Any other element (undefined length: encapsulated pixel data and sequences;
an unknown VR; a value running past the end) is read by pydicom's own
generator, at its place in the same file.  For what it does not do exactly
as pydicom would at the file level (no transfer syntax in the file meta,
big endian, deflated, private syntaxes, a command set, a data set whose VR
encoding contradicts its transfer syntax, pydicom's debugging mode), and
for a file it cannot read (which
``dcmread`` then reads again and fails on in its own words), it returns
``None`` and the caller uses ``dcmread``.  tests/dicom/test_parse.py holds
it to ``dcmread`` over the whole corpus.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from struct import Struct

import pydicom
from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import ENCODED_VR, data_element_generator
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import convert_string

# The pydicom this module builds datasets exactly as (it uses pydicom's
# internals): with any other, the reader calls dcmread and the profile ds[tag].
EXACT_FOR = "3.0."
_EXACT = pydicom.__version__.startswith(EXACT_FOR)

# Bytes read at a time for the elements' headers and short values.  Not the
# whole file: copying the pixel data out of it again costs more than reading
# the file.
WINDOW = 64 * 2**10

_EXPLICIT = Struct("<HH2sH").unpack_from
_IMPLICIT = Struct("<HHL").unpack_from
_LENGTH_32 = Struct("<L").unpack_from
_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
# the explicit VRs pydicom decodes as such, as text
_VR_TEXT = {vr: vr.decode(default_encoding) for vr in ENCODED_VR}
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_CHARSET = 0x00080005
_UNDEFINED = 0xFFFFFFFF
_logger = logging.getLogger("pydicom")
# the fields of RawDataElement after the seven pydicom's reader sets, at their defaults
_RAW_DEFAULTS = tuple(RawDataElement._field_defaults[name] for name in RawDataElement._fields[7:])


class _Unusual(Exception):
    """Something this module leaves to ``dcmread``."""


class _Source:
    """The bytes being parsed: a window on a file, read as needed, or (no
    file) all of them."""

    __slots__ = ("data", "base", "file", "size")

    def __init__(self, data: bytes, file=None, size: int | None = None) -> None:
        self.data = data  # the bytes from offset ``base``
        self.base = 0
        self.file = file
        self.size = len(data) if size is None else size

    def at(self, offset: int, count: int) -> bytes:
        """Up to ``count`` bytes from ``offset`` (fewer at the end)."""
        start = offset - self.base
        if self.file is not None and (start < 0 or start + count > len(self.data)):
            self.file.seek(offset)
            self.data, self.base = self.file.read(max(WINDOW, count)), offset
            start = 0
        return self.data[start:start + count]


def read_file(path: str | Path) -> FileDataset | None:
    """``dcmread(path, force=True)``, or ``None`` where this module leaves
    the file to it (the caller then calls it)."""
    if config.debugging or not _EXACT:
        return None  # pydicom logs every element then; another pydicom may build other datasets
    name = os.fspath(path)
    with open(name, "rb") as f:
        source = _Source(f.read(WINDOW), f, os.fstat(f.fileno()).st_size)
        try:
            return _read(name, source)
        except Exception:  # _Unusual, or a damaged file: dcmread reads it again and fails its own way
            return None


def _read(name: str, source: _Source) -> FileDataset:
    size = source.size
    if size >= 132 and source.at(128, 4) == b"DICM":
        preamble, at = source.at(0, 128), 132
    else:
        preamble, at = None, 0  # force=True: no preamble, the data set from the start
    meta, at = _file_meta(source, at)
    if 0 < size - at < 8 or (size - at >= 8 and source.at(at, 2) == b"\0\0"):
        raise _Unusual  # a command set, or a stub pydicom reads its own way
    syntax = meta.get("TransferSyntaxUID") if meta._dict else None
    implicit = True
    if at < size:
        if syntax is None or syntax == ExplicitVRBigEndian or syntax == DeflatedExplicitVRLittleEndian \
                or syntax in PrivateTransferSyntaxes:
            raise _Unusual  # guessed from the data, big endian, inflated, or looked up
        # every other public syntax is explicit VR little endian
        implicit = syntax == ImplicitVRLittleEndian
        vr = source.at(at + 4, 2)
        if len(vr) == 2 and (not (0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B)) != implicit:
            raise _Unusual  # the data contradicts the meta: pydicom warns and reads it the other way
    elements, _, _ = _elements(source, at, implicit, default_encoding)
    dataset = _dataset(elements, implicit, default_encoding)
    ds = FileDataset(name, dataset, preamble, meta, implicit, True)
    ds.set_original_encoding(implicit, True, dataset._character_set)
    return ds


def _file_meta(source: _Source, at: int) -> tuple[FileMetaDataset, int]:
    """The group 0002 elements from ``at`` (explicit VR little endian), as
    pydicom's ``_read_file_meta_info`` leaves them, and where they end."""
    start = at
    size = source.size
    found: dict = {}
    while at + 8 <= size:
        head = source.at(at, 12)
        group, element, vr_bytes, length = _EXPLICIT(head)
        if group != 2:
            break
        vr = _VR_TEXT.get(vr_bytes)
        if vr is None:
            raise _Unusual  # pydicom tries implicit VR then
        if vr in _LONG_VRS:
            if at + 12 > size:
                raise _Unusual
            (length,) = _LENGTH_32(head, 8)
            value_at = at + 12
        else:
            value_at = at + 8
        end = value_at + length
        if length == _UNDEFINED or end > size:
            raise _Unusual
        tag = BaseTag(group << 16 | element)
        value = source.at(value_at, length) if length else empty_value_for_VR(vr, raw=True)
        found[tag] = RawDataElement(tag, vr, length, value, value_at, False, True)
        at = end
    meta = FileMetaDataset(found)
    meta.set_original_encoding(is_implicit_vr=False, is_little_endian=True, character_encoding=default_encoding)
    if not found:
        return meta, at
    try:
        meta[min(found)]  # pydicom reads the first element to test the encoding
    except NotImplementedError:
        raise _Unusual from None
    if 0x00020000 in found:
        actual = at - (start + 12)
        stated = meta.FileMetaInformationGroupLength
        if stated != actual:
            _logger.info(
                "_read_file_meta_info: (0002,0000) 'File Meta Information Group Length' value doesn't match "
                f"the actual File Meta Information length ({stated} vs {actual} bytes)"
            )
    return meta, at


def _elements(
    source: _Source, at: int, implicit: bool, encoding: str | list[str], end: int | None = None
) -> tuple[dict, str | list[str], int]:
    """The elements of one data set from ``at``, as pydicom's ``read_dataset``
    collects them: to the end of the source or an item delimiter, or
    (``end``) while they start before that offset.  Also the character set
    they end in, and where reading stopped (where pydicom leaves its file
    position)."""
    size = source.size
    stop = size if end is None else min(end, size)
    found: dict = {}
    stream = source.file  # for pydicom's generator
    data, base = source.data, source.base
    limit = base + len(data)  # the end of the window
    vr_text = _VR_TEXT
    long_vrs = _LONG_VRS
    # RawDataElement(...) without its Python-level __new__
    new = tuple.__new__
    raw_class = RawDataElement
    while at < stop:
        if at + 8 > size:
            return found, encoding, size  # pydicom's read of the next header comes back short: the end
        if at + 12 > limit:
            source.at(at, 12)  # the next window
            data, base = source.data, source.base
            limit = base + len(data)
        here = at - base
        if implicit:
            group, element, length = _IMPLICIT(data, here)
            vr = None
            value_at = at + 8
        else:
            group, element, vr_bytes, length = _EXPLICIT(data, here)
            vr = vr_text.get(vr_bytes)
            value_at = at + 8
            if vr in long_vrs:
                if at + 12 <= size:
                    (length,) = _LENGTH_32(data, here + 8)
                    value_at = at + 12
                else:
                    vr = None  # pydicom's turn: it fails there
        tag = group << 16 | element
        if tag == _ITEM_DELIMITER:
            return found, encoding, at + 8  # pydicom ends the data set here
        value_end = value_at + length
        if (vr is None and not implicit) or length == _UNDEFINED or value_end > size:
            # pydicom's generator reads this one element, where it is
            if stream is None:
                stream = DicomBytesIO(source.data)
            stream.seek(at)
            elem = next(data_element_generator(stream, implicit, True, encoding=encoding), None)
            at = stream.tell()
            if elem is None:
                return found, encoding, at
            found[elem.tag] = elem
            continue
        key = BaseTag(tag)
        if not length:
            value = empty_value_for_VR(vr, raw=True)
        elif value_end <= limit:
            value = data[value_at - base:value_end - base]
        else:  # a long value: one read of its own
            value = source.at(value_at, length)
            data, base = source.data, source.base
            limit = base + len(data)
        if tag == _CHARSET:
            encoding = convert_encodings(convert_string(value or b"", True))
        found[key] = new(raw_class, (key, vr, length, value, value_at, implicit, True, *_RAW_DEFAULTS))
        at = value_end
    return found, encoding, at


def _dataset(elements: dict, implicit: bool, parent_encoding: str | list[str]) -> Dataset:
    """The data set ``read_dataset`` makes of its elements."""
    ds = Dataset(elements, parent_encoding=parent_encoding)
    charset = elements.get(_CHARSET)
    encoding = convert_encodings(convert_raw_data_element(charset).value) if charset is not None else parent_encoding
    ds.set_original_encoding(implicit, True, encoding)
    return ds


# -- sequences -------------------------------------------------------------------


def sequence(ds: Dataset, tag: int) -> DataElement:
    """``ds[tag]`` for a sequence: the same element, with the same items, and
    ``ds`` left as pydicom's conversion leaves it; faster for a sequence of
    defined length read from a little endian file."""
    raw = ds._dict[tag]
    if raw.__class__ is not RawDataElement or not _EXACT or not _plain_conversion():
        return ds[tag]
    value = raw.value
    if not value or raw.length == _UNDEFINED or not raw.is_little_endian:
        return ds[tag]  # deferred, empty, or read its own way
    vr = raw.VR
    if vr is None and not tag & 0x10000:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return ds[tag]
    if vr != "SQ":
        return ds[tag]
    charset = ds.original_character_set or ds._character_set
    encodings = charset or [default_encoding]  # as convert_value passes it on
    try:
        items = _items(value, raw.is_implicit_VR, [encodings] if isinstance(encodings, str) else encodings,
                       raw.value_tell)
    except Exception:  # pydicom reads it again and fails or warns its own way
        return ds[tag]
    ds[tag] = DataElement(raw.tag, vr, items, raw.value_tell, False, already_converted=True)
    elem = ds._dict[tag]
    ds._set_pixel_representation(elem)
    return elem


def _plain_conversion() -> bool:
    """Does pydicom convert raw elements with its own default hooks?"""
    return (
        not config.debugging
        and config.data_element_callback is None
        and hooks.raw_element_vr is raw_element_vr
        and hooks.raw_element_value is raw_element_value
        and not hooks.raw_element_kwargs
    )


def _items(data: bytes, implicit: bool, encoding: str | list[str], offset: int) -> Sequence:
    """pydicom's ``convert_SQ`` of a sequence's value: its items, read as
    ``read_sequence`` reads them (positions in the value, plus ``offset``
    where pydicom adds it)."""
    source = _Source(data)
    size = len(data)
    found = []
    at = 0
    while at < size:
        item_at = at
        if at + 8 > size:
            raise _Unusual  # pydicom raises "No tag to read"
        group, element, length = _IMPLICIT(data, at)
        tag = group << 16 | element
        if tag == _SEQUENCE_DELIMITER:
            break
        at += 8
        # an item of an explicit VR sequence may be in implicit VR: pydicom looks at its first element
        item_implicit = implicit
        if not implicit:
            vr = data[at + 4:at + 6]
            if len(vr) == 2 and not (0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B):
                item_implicit = True
        if length == _UNDEFINED:
            elements, _, at = _elements(source, at, item_implicit, encoding)
        else:
            elements, _, at = _elements(source, at, item_implicit, encoding, at + length)
        item = _dataset(elements, item_implicit, encoding)
        item.is_undefined_length_sequence_item = length == _UNDEFINED
        item.seq_item_tell = item_at + offset
        item.file_tell = item_at + offset
        found.append(item)
    items = Sequence(found)
    items.is_undefined_length = False
    return items
