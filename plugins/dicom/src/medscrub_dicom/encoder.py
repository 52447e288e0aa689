"""Encoding a cleaned dataset as a Part 10 file, fast, or not at all.

A cleaned dataset is mostly elements still in the form they were read in
(:class:`~pydicom.dataelem.RawDataElement`), which pydicom's ``dcmwrite``
copies byte for byte but through a per-element machinery that costs more than
the cleaning itself.  :func:`encode_file` writes the same bytes that
``dcmwrite(path, ds, enforce_file_format=True)`` writes, element for element,
for the common case: a little endian transfer syntax, not deflated, a file
meta information that needs no repair.  Whatever it does not know how to
write exactly as pydicom would (a dataset read in another encoding or
character set, an element not yet read, a value pydicom would convert on the
way) it hands to pydicom's own ``write_dataset`` or ``write_data_element``,
and for anything unusual at the file level it returns ``None`` and the caller
uses ``dcmwrite``.
"""

from __future__ import annotations

from struct import Struct
from typing import NamedTuple

from pydicom import Dataset
from pydicom.charset import convert_encodings, encode_string
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, PersonName

from .codestreams import sample_ranges

_IMPLICIT = Struct("<HHL").pack
_EXPLICIT_SHORT = Struct("<HH2sH").pack
_EXPLICIT_LONG = Struct("<HH2s2xL").pack
_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
DEFAULT_ENCODING = "iso8859"

# String VRs pydicom writes with ``write_string`` (default character set)
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UR"})
# Text VRs written in the dataset's character set
_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})
_BYTES_VRS = frozenset({"OB", "OW", "UN"})
_META_REQUIRED = (0x00020002, 0x00020003, 0x00020010)
_ASCII_PROBE = "AZaz09 .-_^=:/,+*()"
_ascii_safe: dict[tuple[str, ...], bool] = {}


def ascii_transparent(encodings: str | list[str] | tuple[str, ...] | None) -> bool:
    """Does pydicom encode ASCII text in these character sets as the ASCII
    bytes themselves (no escape sequences, no other mapping)?"""
    key = (encodings,) if isinstance(encodings, str) else tuple(encodings or (DEFAULT_ENCODING,))
    found = _ascii_safe.get(key)
    if found is None:
        try:
            codecs = convert_encodings(list(key))
            found = (encode_string(_ASCII_PROBE, codecs) == _ASCII_PROBE.encode("ascii")
                     and PersonName(_ASCII_PROBE).encode(codecs) == _ASCII_PROBE.encode("ascii"))
        except Exception:  # an unknown character set: let pydicom decide
            found = False
        _ascii_safe[key] = found
    return found


class _Delegate(Exception):
    """This element is pydicom's to write."""


def _text(value: object) -> str:
    if isinstance(value, (list, tuple, MultiValue)):
        if not all(isinstance(v, str) for v in value):
            raise _Delegate
        return "\\".join(value)
    if not isinstance(value, str) or isinstance(value, PersonName):
        raise _Delegate
    return value


def _value_bytes(elem: DataElement, vr: str, encodings: list[str] | str) -> bytes:
    """The value of a converted element, as pydicom's writers encode it; only
    the simple cases (ASCII strings, byte strings), else :class:`_Delegate`."""
    value = elem.value
    if value is None:
        return b""
    if vr == "UI" or vr in _STRING_VRS or vr in _TEXT_VRS:
        text = _text(value)
        if not text:
            return b""  # "", [] and [""] write nothing
        if not text.isascii() or (vr in _TEXT_VRS and not ascii_transparent(encodings)):
            raise _Delegate
        data = text.encode("ascii")
        if len(data) % 2:
            data += b"\0" if vr == "UI" else b" "
        return data
    if vr in _BYTES_VRS and isinstance(value, bytes) and not elem.is_buffered:
        return value + b"\0" if len(value) % 2 and vr != "UN" else value  # OB and OW are padded, UN is not
    raise _Delegate


class _Encoder:
    """Encodes datasets in one transfer syntax's encoding into a list of chunks."""

    def __init__(self, implicit: bool, compressed: bool = False) -> None:
        self.implicit = implicit
        self.compressed = compressed
        self.encoding = (implicit, True)
        self.out: list[bytes] = []
        self.samples: int | None = None  # index in ``out`` of the top-level pixel data value

    def header(self, tag: int, vr: str | None, length: int) -> bytes:
        if self.implicit:
            return _IMPLICIT(tag >> 16, tag & 0xFFFF, length)
        if vr in _LONG_VRS:
            return _EXPLICIT_LONG(tag >> 16, tag & 0xFFFF, vr.encode("latin-1"), length)
        return _EXPLICIT_SHORT(tag >> 16, tag & 0xFFFF, vr.encode("latin-1"), length)

    def pydicom_dataset(self, ds: Dataset, parent_encoding) -> int:
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = self.encoding
        write_dataset(buffer, ds, parent_encoding)
        data = buffer.getvalue()
        self.out.append(data)
        return len(data)

    def pydicom_element(self, elem, encodings) -> int:
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = self.encoding
        write_data_element(buffer, elem, encodings)
        data = buffer.getvalue()
        self.out.append(data)
        return len(data)

    def dataset(self, ds: Dataset, parent_encoding, top: bool = False) -> int:
        """Encode ``ds`` as pydicom's ``write_dataset`` would; returns the byte count."""
        if ds.original_encoding != self.encoding or ds.original_character_set != ds._character_set:
            # pydicom converts every element then (VR lookup, character set)
            if top and PIXEL_DATA in ds._dict:
                ds["PixelData"].is_undefined_length = self.compressed  # as dcmwrite does first
            return self.pydicom_dataset(ds, parent_encoding)
        d = ds._dict
        encodings = ds.get("SpecificCharacterSet", parent_encoding) if 0x00080005 in d else parent_encoding
        return self.elements(ds, d, encodings, top)

    def elements(self, ds: Dataset | None, d: dict, encodings, top: bool = False) -> int:
        out = self.out
        header = self.header
        implicit = self.implicit
        total = 0
        for tag in sorted(d, key=int):
            if not tag & 0xFFFF and tag >> 16 > 6:
                continue  # retired group lengths are not written
            elem = d[tag]
            if top and tag >> 16 == 0x7FE0 and tag & 0xFFFF == 0x0010:
                total += self.pixel_data(ds, elem, encodings)
                continue
            if elem.__class__ is RawDataElement:
                value = elem.value
                vr = elem.VR
                if value is None or elem.is_buffered or (not implicit and (vr is None or len(vr) != 2)):
                    total += self.pydicom_element(ds.get_item(tag), encodings)
                    continue
                n = len(value)
                if elem.length == _UNDEFINED:
                    if (tag >> 16 == 0x7FE0 and tag & 0xFFFF == 0x10 and not value.startswith(_ITEM)) or (not implicit and vr not in _LONG_VRS):
                        total += self.pydicom_element(elem, encodings)  # pydicom raises or writes it its way
                        continue
                    head = header(tag, vr, _UNDEFINED)
                    out.append(head)
                    out.append(value)
                    out.append(_SEQUENCE_DELIMITER)
                    total += len(head) + n + 8
                    continue
                if not implicit and n > 0xFFFF and vr not in _LONG_VRS:
                    total += self.pydicom_element(elem, encodings)  # pydicom writes it as UN
                    continue
                head = header(tag, vr, n)
                out.append(head)
                out.append(value)
                total += len(head) + n
                continue
            vr = elem.VR
            if vr == "SQ":
                total += self.sequence(elem, encodings)
                continue
            if elem.is_undefined_length or (not implicit and len(vr) != 2):
                total += self.pydicom_element(elem, encodings)
                continue
            try:
                data = _value_bytes(elem, vr, encodings)
            except _Delegate:
                total += self.pydicom_element(elem, encodings)
                continue
            if not implicit and len(data) > 0xFFFF and vr not in _LONG_VRS:
                total += self.pydicom_element(elem, encodings)
                continue
            head = header(tag, vr, len(data))
            out.append(head)
            out.append(data)
            total += len(head) + len(data)
        return total

    def pixel_data(self, ds: Dataset, elem, encodings) -> int:
        """dcmwrite reads the top-level pixel data and sets its undefined length
        from the transfer syntax before writing it."""
        compressed = self.compressed
        if elem.__class__ is RawDataElement:
            value, vr = elem.value, elem.VR
            plain = value is not None and not elem.is_buffered and (vr in ("OB", "OW") or (self.implicit and vr is None))
        else:
            value, vr = elem.value, elem.VR
            plain = isinstance(value, bytes) and not elem.is_buffered and vr in ("OB", "OW")
            if plain:
                elem.is_undefined_length = compressed
        if plain and not len(value) % 2 and (not compressed or value.startswith(_ITEM)):
            head = self.header(PIXEL_DATA, vr, _UNDEFINED if compressed else len(value))
            self.out.append(head)
            self.samples = len(self.out)
            self.out.append(value)
            if compressed:
                self.out.append(_SEQUENCE_DELIMITER)
                return len(head) + len(value) + 8
            return len(head) + len(value)
        elem = ds["PixelData"]
        elem.is_undefined_length = compressed
        return self.pydicom_element(elem, encodings)

    def sequence(self, elem: DataElement, encodings) -> int:
        out = self.out
        items = elem.value
        undefined = elem.is_undefined_length
        slot = len(out)
        out.append(b"")
        total = 0
        if items:
            item_encodings = convert_encodings(encodings or [DEFAULT_ENCODING])
            for item in items:
                item_slot = len(out)
                out.append(b"")
                length = self.dataset(item, item_encodings)
                if getattr(item, "is_undefined_length_sequence_item", False):
                    out[item_slot] = _ITEM + b"\xff\xff\xff\xff"
                    out.append(_ITEM_DELIMITER)
                    length += 8
                else:
                    out[item_slot] = _ITEM + length.to_bytes(4, "little")
                total += 8 + length
        if undefined:
            out.append(_SEQUENCE_DELIMITER)
            out[slot] = self.header(elem.tag, "SQ", _UNDEFINED)
            return len(out[slot]) + total + 8
        out[slot] = self.header(elem.tag, "SQ", total)
        return len(out[slot]) + total


def _meta_chunks(meta: Dataset) -> list[bytes] | None:
    """The file meta information group as ``write_file_meta_info`` writes a
    complete one (explicit VR little endian, group length first); ``None``
    when pydicom would add or reject something."""
    d = meta._dict
    if any(elem.__class__ is not DataElement for elem in d.values()):
        return None
    for tag in _META_REQUIRED + (0x00020001, 0x00020012):
        if tag not in d or d[tag].is_empty:
            return None
    if 0x00020013 not in d or any(tag >> 16 != 2 for tag in d):
        return None
    encoder = _Encoder(implicit=False)
    body = {tag: elem for tag, elem in d.items() if tag & 0xFFFF}
    length = encoder.elements(None, body, DEFAULT_ENCODING)
    return [_EXPLICIT_SHORT(2, 0, b"UL", 4), length.to_bytes(4, "little"), *encoder.out]


def _uid_of(ds: Dataset, tag: int) -> str | None:
    elem = ds._dict.get(tag)
    if elem is None:
        return None
    if elem.__class__ is RawDataElement:
        if elem.value is None:
            return ds[tag].value
        text = elem.value.decode("latin-1").rstrip("\0 ")
        return None if "\\" in text else text.strip()  # multi-valued: let pydicom decide
    return elem.value


class Encoded(NamedTuple):
    chunks: list[bytes]  # the file, in pieces
    samples: list[tuple[int, int]]  # byte ranges of pixel samples in it: native data, entropy-coded data


def encode_file(ds: Dataset) -> Encoded | None:
    """The Part 10 file ``dcmwrite(..., enforce_file_format=True)`` would
    write for ``ds``, or ``None`` to leave it to ``dcmwrite``."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or 0x00020010 not in meta._dict:
        return None
    ts = meta._dict[0x00020010].value
    if not isinstance(ts, str):
        return None
    ts = UID(ts)
    if not ts.is_transfer_syntax or ts.is_private or not ts.is_little_endian or ts == DeflatedExplicitVRLittleEndian:
        return None
    if any(tag >> 16 in (0, 2) for tag in ds._dict):
        return None  # dcmwrite refuses these
    preamble = getattr(ds, "preamble", None)
    if preamble and len(preamble) != 128:
        return None
    # dcmwrite would put the data set's own SOP class and instance into the meta
    meta_class = meta._dict.get(0x00020002)
    meta_instance = meta._dict.get(0x00020003)
    ds_class = _uid_of(ds, 0x00080016)
    ds_instance = _uid_of(ds, 0x00080018)
    if (meta_class is None or ds_class is None and 0x00080016 in ds._dict
            or (ds_class and ds_class != meta_class.value)):
        return None
    if (meta_instance is None or ds_instance is None and 0x00080018 in ds._dict
            or (ds_instance and ds_instance != meta_instance.value)):
        return None
    head = _meta_chunks(meta)
    if head is None:
        return None
    encoder = _Encoder(ts.is_implicit_VR, ts.is_compressed)
    encoder.dataset(ds, DEFAULT_ENCODING, top=True)
    chunks = [preamble or b"\0" * 128, b"DICM", *head, *encoder.out]
    samples: list[tuple[int, int]] = []
    if encoder.samples is not None:
        index = len(chunks) - len(encoder.out) + encoder.samples
        start = sum(len(c) for c in chunks[:index])
        value = chunks[index]
        if not ts.is_compressed:
            samples = [(start, start + len(value))]  # native pixel data: samples, no text
        else:  # the codestreams' marker segments can hold text: they stay in the search
            samples = [(start + a, start + b) for a, b in sample_ranges(value, str(ts))]
    return Encoded(chunks, samples)
