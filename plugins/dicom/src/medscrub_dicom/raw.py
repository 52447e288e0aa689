"""Reading and replacing element values in their encoded (raw) form.

pydicom keeps an element it has read as a :class:`RawDataElement` (the
bytes) until something reads its value; reading converts it (decodes the
bytes, checks them against the VR, builds a :class:`DataElement`), and a
value assigned to a ``DataElement`` is validated again and re-encoded when
the file is written.  For the values the profile changes most (UIDs, dates,
codes, and ASCII names, IDs and placeholders) that costs more than the
cleaning itself.

:func:`values_of` decodes such values from the bytes exactly as pydicom
would, and :func:`encoded` encodes replacement values exactly as pydicom's
writer would, so that :func:`put` can store them as a ``RawDataElement``.
Both return ``None`` for anything else (other VRs, text that is not plain
ASCII, a character set that does not keep ASCII as is, pydicom configured to
convert differently): the caller then goes through pydicom.
"""

from __future__ import annotations

from pydicom import Dataset, config
from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.multival import MultiValue
from pydicom.valuerep import TEXT_VR_DELIMS

from .encoder import ascii_transparent

# VRs in the default character set (pydicom's convert_string, convert_UI, convert_AE_string)
DEFAULT_VRS = frozenset({"UI", "DA", "DT", "TM", "CS", "AS", "AE"})
# Text VRs in the dataset's character set: split on "\" (LO, SH, UC, PN) or not
MULTI_TEXT_VRS = frozenset({"LO", "SH", "UC", "PN"})
SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT"})
TEXT_VRS = MULTI_TEXT_VRS | SINGLE_TEXT_VRS
VRS = DEFAULT_VRS | TEXT_VRS
_PROBE = "AZaz09 .-_^=:/,+*()"


def pydicom_defaults() -> bool:
    """Does pydicom convert and validate values the way this module assumes
    (its default configuration)?  Checked once per dataset."""
    settings = config.settings
    return (
        not config.datetime_conversion
        and not config.use_none_as_empty_text_VR_value
        and config.replace_un_with_known_vr
        and config.data_element_callback is None
        and hooks.raw_element_vr is raw_element_vr
        and hooks.raw_element_value is raw_element_value
        and settings.reading_validation_mode != config.RAISE
        and settings.writing_validation_mode != config.RAISE
    )


_decodes_ascii: dict[tuple[str, ...], bool] = {}


def _charset_keeps_ascii(ds: Dataset) -> bool:
    """Are plain ASCII bytes read and written as the same text in this
    dataset's character sets (the one pydicom reads it with and the one it
    writes it with)?"""
    reading = ds.original_character_set or ds._character_set
    writing = ds._character_set
    for encodings in (reading, writing):
        key = (encodings,) if isinstance(encodings, str) else tuple(encodings or ())
        found = _decodes_ascii.get(key)
        if found is None:
            try:
                codecs = list(key) or ["iso8859"]
                found = (ascii_transparent(codecs)
                         and decode_bytes(_PROBE.encode("ascii"), codecs, TEXT_VR_DELIMS) == _PROBE)
            except Exception:  # an unknown character set: let pydicom decide
                found = False
            _decodes_ascii[key] = found
        if not found:
            return False
    return True


class Values:
    """Per dataset: whether its text is ASCII-transparent, worked out once."""

    __slots__ = ("ds", "_text_ok")

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._text_ok: bool | None = None

    def text_ok(self) -> bool:
        if self._text_ok is None:
            self._text_ok = _charset_keeps_ascii(self.ds)
        return self._text_ok


def fast_vr(raw, tag: int, dictionary_vr: str | None = None) -> str | None:
    """The VR pydicom would give ``raw`` on conversion, when it is one this
    module handles; ``None`` otherwise (including for converted elements)."""
    if raw.__class__ is not RawDataElement or raw.is_buffered:
        return None
    vr = raw.VR
    if vr is None:
        if tag & 0x10000:
            return None  # pydicom looks private VRs up by creator
        if dictionary_vr is None:
            try:
                dictionary_vr = dictionary_VR(tag)
            except KeyError:
                return None
        vr = dictionary_vr
    return vr if vr in VRS else None


def values_of(raw: RawDataElement, vr: str, values: Values) -> list[str] | None:
    """The element's values as pydicom converts them (``str`` of each), or
    ``None`` when pydicom must convert it."""
    if raw.length == 0:
        return [""]  # pydicom's empty value for these VRs: ""
    data = raw.value
    if data is None:
        return None  # deferred read
    if vr in DEFAULT_VRS:
        text = data.decode("latin-1")
        if vr == "UI":
            return [v.strip() for v in text.rstrip("\0 ").split("\\")]
        if vr == "AE":
            return [v.strip() for v in text.split("\\")]
        return text.rstrip(" \0").split("\\")
    if not data.isascii() or b"\x1b" in data or not values.text_ok():
        return None
    if vr == "PN":
        return data.rstrip(b"\0 ").decode("ascii").split("\\")
    text = data.decode("ascii")
    if vr in SINGLE_TEXT_VRS:
        return [text.rstrip("\0 ")]
    return [v.rstrip("\0 ") for v in text.split("\\")]


def as_value(values: list[str]) -> str | MultiValue:
    """The value pydicom's conversion would give, for ``str()`` of it."""
    return values[0] if len(values) == 1 else MultiValue(str, values)


def text_value(ds: Dataset, tag: int) -> str:
    """``str(ds[tag].value or "")``, from the raw bytes when they are plain
    (the element is not converted); ``""`` when the element is absent."""
    raw = ds._dict.get(tag)
    if raw is None:
        return ""
    vr = fast_vr(raw, tag)
    if vr is not None and pydicom_defaults():
        found = values_of(raw, vr, Values(ds))
        if found is not None:
            return str(as_value(found) or "")
    return str(ds[tag].value or "")


def encoded(vr: str, new: list, values: Values) -> bytes | None:
    """``new`` as pydicom's writer encodes it for ``vr``, or ``None``."""
    if not new:
        return b""
    for v in new:
        if v.__class__ is not str or not v.isascii() or not v.isprintable():
            return None
    if vr not in DEFAULT_VRS:
        if vr not in TEXT_VRS or not values.text_ok() or (vr in SINGLE_TEXT_VRS and len(new) > 1):
            return None
    data = "\\".join(new).encode("ascii")
    if len(data) % 2:
        data += b"\0" if vr == "UI" else b" "
    return data


def put(ds: Dataset, tag: int, old, data: bytes) -> None:
    """Replace element ``tag`` by a raw element holding ``data``, in the
    encoding and with the VR the element it replaces was read with."""
    ds._dict[tag] = RawDataElement(
        old.tag, old.VR, len(data), data, old.value_tell, old.is_implicit_VR, old.is_little_endian
    )
