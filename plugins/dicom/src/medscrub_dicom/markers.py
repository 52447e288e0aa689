"""The attributes that say a dataset was de-identified, and how (PS3.15 E.1.1,
CID 7050 "De-identification Method")."""

from __future__ import annotations

from pydicom import Dataset, Sequence, config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag

from .options import DicomOptions
from .raw import Values, encoded, pydicom_defaults

# CID 7050 codes (scheme DCM) and their meanings.
CODES = {
    "113100": "Basic Application Confidentiality Profile",
    "113101": "Clean Pixel Data Option",
    "113102": "Clean Recognizable Visual Features Option",
    "113103": "Clean Graphics Option",
    "113104": "Clean Structured Content Option",
    "113105": "Clean Descriptors Option",
    "113106": "Retain Longitudinal Temporal Information Full Dates Option",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
    "113108": "Retain Patient Characteristics Option",
    "113109": "Retain Device Identity Option",
    "113110": "Retain UIDs Option",
    "113111": "Retain Safe Private Option",
    "113112": "Retain Institution Identity Option",
}
OPTION_CODES = {
    "clean_graphics": "113103",
    "clean_structured_content": "113104",
    "clean_descriptors": "113105",
    "retain_patient_characteristics": "113108",
    "retain_device_identity": "113109",
    "retain_uids": "113110",
    "retain_safe_private": "113111",
    "retain_institution_identity": "113112",
}
LONGITUDINAL = {"remove": "REMOVED", "shift": "MODIFIED", "keep": "UNMODIFIED"}


def method_codes(options: DicomOptions, date_policy: str) -> list[str]:
    codes = ["113100"]
    if date_policy == "keep":
        codes.append("113106")
    elif date_policy == "shift":
        codes.append("113107")
    codes += [OPTION_CODES[name] for name in options.enabled()]
    return sorted(codes)


def _put(ds: Dataset, tag: int, vr: str, value) -> None:
    # our own valid values: skip pydicom's per-assignment validation
    ds[tag] = DataElement(tag, vr, value, validation_mode=config.IGNORE)


def _code_item(code: str) -> Dataset:
    item = Dataset()
    _put(item, 0x00080100, "SH", code)
    _put(item, 0x00080102, "SH", "DCM")
    _put(item, 0x00080104, "LO", CODES[code])
    return item


def add_markers(ds: Dataset, options: DicomOptions, date_policy: str, version: str, site_rules: bool) -> None:
    """Set PatientIdentityRemoved, DeidentificationMethod (and its code
    sequence) and LongitudinalTemporalInformationModified, replacing what an
    earlier de-identification left."""
    method = [f"medscrub-dicom {version}"[:64], "PS3.15 2026d Basic Profile", f"dates {date_policy}"]
    method += [CODES[OPTION_CODES[name]] for name in options.enabled()]
    if options.unknown_text == "keep":
        method.append("unlisted text kept")
    if site_rules:
        method.append("site rules")
    codes = method_codes(options, date_policy)
    if _put_raw(ds, method, codes, date_policy):
        return
    _put(ds, 0x00120062, "CS", "YES")
    _put(ds, 0x00120063, "LO", method)
    _put(ds, 0x00120064, "SQ", Sequence([_code_item(c) for c in codes]))
    _put(ds, 0x00280303, "CS", LONGITUDINAL[date_policy])


# The encoded markers, by (method, codes, policy, implicit VR, little endian):
# the same few for every file of a run.
_ENCODED: dict[tuple, list[tuple[BaseTag, str, bytes]]] = {}


def _put_raw(ds: Dataset, method: list[str], codes: list[str], date_policy: str) -> bool:
    """Set the markers as encoded elements, as pydicom would write them, in
    the dataset's own encoding; False when that cannot be done exactly."""
    implicit, little = ds.original_encoding
    if implicit is None or not pydicom_defaults():
        return False
    values = Values(ds)
    key = (tuple(method), tuple(codes), date_policy, implicit, little)
    elements = _ENCODED.get(key)
    if elements is None:
        texts = [(0x00120062, "CS", ["YES"]), (0x00120063, "LO", method),
                 (0x00280303, "CS", [LONGITUDINAL[date_policy]])]
        elements = []
        for tag, vr, value in texts:
            data = encoded(vr, value, values)
            if data is None:
                return False
            elements.append((BaseTag(tag), vr, data))
        sequence = DataElement(0x00120064, "SQ", Sequence([_code_item(c) for c in codes]))
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
        write_data_element(buffer, sequence)
        elements.append((BaseTag(0x00120064), "SQ", buffer.getvalue()[8 if implicit else 12:]))
        elements.sort()
        _ENCODED[key] = elements
    elif not values.text_ok():
        return False
    d = ds._dict
    for tag, vr, data in elements:
        d[tag] = RawDataElement(tag, vr, len(data), data, 0, implicit, little)
    return True


def add_method_code(ds: Dataset, code: str) -> None:
    """Add a CID 7050 code (and its meaning to DeidentificationMethod) once."""
    if code not in CODES:
        raise ValueError(f"{code} is not a CID 7050 code")
    items = ds.get("DeidentificationMethodCodeSequence")
    if items is None:
        ds.DeidentificationMethodCodeSequence = Sequence()
        items = ds.DeidentificationMethodCodeSequence
    if any(getattr(item, "CodeValue", None) == code for item in items):
        return
    items.append(_code_item(code))
    items_sorted = sorted(items, key=lambda item: str(getattr(item, "CodeValue", "")))
    ds.DeidentificationMethodCodeSequence = Sequence(items_sorted)
    current = ds[0x00120063] if 0x00120063 in ds else None
    values = [] if current is None or current.is_empty else list(current.value) if current.VM > 1 else [current.value]
    if CODES[code] not in values:
        ds.DeidentificationMethod = [*values, CODES[code]]


def mark_clean_pixel_data(ds: Dataset) -> None:
    """For pixel cleaners (erase-text, blank regions): call after changing pixels."""
    add_method_code(ds, "113101")


def mark_clean_recognizable_visual_features(ds: Dataset) -> None:
    """For defacing cleaners: call after changing pixels."""
    add_method_code(ds, "113102")
