"""Which images may show burned-in text."""

from __future__ import annotations

from pydicom import Dataset

from .raw import text_value

# Modalities whose images often carry text in the pixels.
TEXT_MODALITIES = frozenset({"US", "SC", "XA", "ES", "OT", "XC", "GM", "DOC"})
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame classes .7.1 to .7.4
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


def burned_in_status(ds: Dataset) -> str | None:
    """"yes", "possible" or None (no pixels, or BurnedInAnnotation NO, or
    nothing suggests text)."""
    if not any(tag in ds._dict for tag in PIXEL_TAGS):
        return None
    value = text_value(ds, 0x00280301).strip().upper()  # BurnedInAnnotation
    if value == "YES":
        return "yes"
    if value:
        return None
    modality = text_value(ds, 0x00080060).strip().upper()
    if modality in TEXT_MODALITIES:
        return "possible"
    if modality == "SM":
        image_type = {str(v).upper() for v in (ds.get("ImageType") or [])}
        if image_type & {"LABEL", "OVERVIEW"}:
            return "possible"
    sop_class = text_value(ds, 0x00080016)
    if sop_class == SECONDARY_CAPTURE or sop_class.startswith(SECONDARY_CAPTURE + "."):
        return "possible"
    return None
