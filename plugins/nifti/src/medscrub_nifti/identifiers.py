"""Which original values identify a patient, in the forms a leak would take."""

from __future__ import annotations

import re
import struct

from .dates import date_forms

# Name parts shorter than this are not searched as raw bytes and in names by
# the core: "Li" or "Doe" would match innocent text.  They stay "text", which
# the verifier searches as whole words.
MIN_PART = 5


def forms(kind: str, value: object) -> list[tuple[str, str]]:
    """(kind, form) pairs to remember for an identifying value."""
    text = str(value).strip()
    if not text:
        return []
    out = [(kind, text)]
    if kind == "name":
        for part in re.split(r"[\^,\s]+", text):
            part = part.strip()
            if part and part != text:
                out.append(("name" if len(part) >= MIN_PART else "text", part))
    elif kind == "date":
        out = [("date", f) for f in date_forms(text)] or [("text", text)]
    return out


def remember(asset, kind: str, value: object) -> list[tuple[str, str]]:
    found = forms(kind, value)
    for k, v in found:
        asset.remember(k, v)
    return found


def forget(asset, values: list[tuple[str, str]]) -> None:
    """Drop values a site rule keeps on purpose from what the leak check looks for."""
    for kind, value in values:
        asset.forget(kind, value)


def word_pattern(values: list[str]) -> re.Pattern | None:
    """A case-insensitive pattern matching any of ``values`` as whole words."""
    values = sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)
    if not values:
        return None
    return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(re.escape(v) for v in values) + r")(?![A-Za-z0-9])", re.I)


# -- a DICOM header embedded in a NIfTI extension --------------------------------

DICOM_PATIENT_TAGS = {
    (0x0010, 0x0010): "name",  # PatientName
    (0x0010, 0x0020): "id",  # PatientID
    (0x0010, 0x0030): "date",  # PatientBirthDate
    (0x0008, 0x0080): "institution",  # InstitutionName
    (0x0008, 0x0081): "address",  # InstitutionAddress
    (0x0008, 0x0090): "name",  # ReferringPhysicianName
    (0x0008, 0x1010): "device",  # StationName
    (0x0018, 0x1000): "device",  # DeviceSerialNumber
    (0x0008, 0x0050): "id",  # AccessionNumber
    (0x0008, 0x0020): "date",  # StudyDate
}
_VRS_LONG = {b"OB", b"OD", b"OF", b"OL", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"OV", b"SV", b"UV"}


def dicom_values(raw: bytes) -> list[tuple[str, str]]:
    """(kind, value) of the patient elements found in DICOM bytes, explicit or
    implicit VR little endian, without parsing the rest: the extension is
    dropped anyway, these values are what to look for elsewhere."""
    found = []
    for (group, element), kind in DICOM_PATIENT_TAGS.items():
        tag = struct.pack("<HH", group, element)
        start = 0
        while True:
            at = raw.find(tag, start)
            if at < 0 or at + 8 > len(raw):
                break
            start = at + 1
            vr = raw[at + 4:at + 6]
            if vr.isalpha() and vr.isupper():
                if vr in _VRS_LONG:
                    if at + 12 > len(raw):
                        continue
                    length, begin = struct.unpack("<I", raw[at + 8:at + 12])[0], at + 12
                else:
                    length, begin = struct.unpack("<H", raw[at + 6:at + 8])[0], at + 8
            else:
                length, begin = struct.unpack("<I", raw[at + 4:at + 8])[0], at + 8
            if 0 < length <= 1024 and begin + length <= len(raw):
                value = raw[begin:begin + length].rstrip(b"\0 ").decode("latin-1", "replace").strip()
                if value and value.isprintable():
                    found.append((kind, value))
                    break
    return found
