"""Recognising and opening DICOM files."""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from medscrub import Asset, BadInput, Item

from .parse import read_file
from .rules import KNOWN_VRS

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_VRS = frozenset(vr.encode() for vr in KNOWN_VRS)
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})


def _plausible_dataset(head: bytes) -> bool:
    """Does ``head`` start like a dataset without preamble: a first element of
    group 0002 or 0008, little or big endian, explicit or implicit VR?"""
    if len(head) < 8:
        return False
    for endian in "<>":
        group, element = struct.unpack(endian + "HH", head[:4])
        if group not in (0x0002, 0x0008) or element > 0x00FF:
            continue
        vr = head[4:6]
        if vr in _VRS:
            if vr in _LONG_VRS:
                if len(head) < 12 or head[6:8] != b"\0\0":
                    continue
            return True
        (length,) = struct.unpack(endian + "I", head[4:8])
        if length < 0x1000 or length == 0xFFFFFFFF:
            return True
    return False


def sniff(path: Path) -> bool:
    """True for a Part 10 file ("DICM" at offset 128) or a bare dataset."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    return _plausible_dataset(head)


def is_dicomdir(ds) -> bool:
    meta = getattr(ds, "file_meta", None)
    sop_class = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    return sop_class == MEDIA_STORAGE_DIRECTORY or 0x00041220 in ds._dict


def read(item: Item) -> Asset:
    path = item.path
    try:
        ds = read_file(path) or dcmread(path, force=True)
    except InvalidDicomError as e:
        raise BadInput(f"not a DICOM file: {e}") from None
    except (OSError, EOFError, ValueError, struct.error, NotImplementedError) as e:
        raise BadInput(f"damaged DICOM file: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if not any(int(tag) >> 16 >= 0x0004 for tag in ds._dict):
        raise BadInput("no DICOM data set in the file (only file meta information, or nothing readable)")
    return Asset(item=item, format="dicom", data=ds)
