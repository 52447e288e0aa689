"""Writing cleaned datasets as Part 10 files."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from pydicom import Dataset, config, dcmread, dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from medscrub import BadInput

from .encoder import encode_file
from .raw import text_value
from .rules import describe
from .table import PROFILE_NAME

# medscrub-dicom's own: 2.25 and the UUID v5 of its PyPI address.  Not
# pydicom's root, which some inputs use for their own instances.
IMPLEMENTATION_CLASS_UID = "2.25.32663035066745229026178965321202839407"

# File meta elements a cleaned file keeps; the rest (source, sending and
# receiving AE titles and addresses, private information) name systems.
META_KEPT = (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013)
ROOT_OFFSETS = (0x00041200, 0x00041202)  # first and last record of the root directory
RECORD_OFFSETS = (0x00041400, 0x00041420)  # next record, first lower-level record
OBSOLETE_RECORD_OFFSETS = (0x00041504,)  # MRDR: dropped, as the records it points to are not kept


def transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    found = text_value(meta, 0x00020010) if meta is not None else ""  # TransferSyntaxUID
    if found:
        return found
    implicit, little = ds.original_encoding
    if implicit in (None, True) and little in (None, True):
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def rebuild_file_meta(
    ds: Dataset, map_uid: Callable[[str], str], record: Callable[..., None], remember: Callable[[str, str], None],
    version: str, fallback_uid: str,
) -> None:
    """Replace the file meta information with a clean one: the SOP class, the
    (mapped) instance UID, the transfer syntax and this writer's identity."""
    old = getattr(ds, "file_meta", None) or FileMetaDataset()
    sop_class = str(text_value(ds, 0x00080016) or old.get("MediaStorageSOPClassUID") or "").strip()
    if not sop_class:
        raise BadInput("no SOP Class UID in the data set or its file meta: no valid Part 10 file can be written")
    original = text_value(old, 0x00020003).strip().rstrip("\0")  # MediaStorageSOPInstanceUID
    instance = text_value(ds, 0x00080018) or (map_uid(original) if original else fallback_uid)
    if original and original != instance:
        record("uid", "file meta (0002,0003) MediaStorageSOPInstanceUID", PROFILE_NAME, "")
        if map_uid(original) != original:
            remember("uid", original)
    new = FileMetaDataset()
    # built element by element: attribute access validates each value again
    for tag, vr, value in (
        (0x00020001, "OB", b"\x00\x01"),
        (0x00020002, "UI", sop_class),
        (0x00020003, "UI", instance),
        (0x00020010, "UI", transfer_syntax(ds)),
        (0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
        (0x00020013, "SH", f"MEDSCRUB {version}"[:16]),
    ):
        new._dict[BaseTag(tag)] = DataElement(tag, vr, value, validation_mode=config.IGNORE)
    for tag in sorted(old._dict, key=int):
        tag = tag + 0  # a plain int: BaseTag compares in Python
        if tag not in META_KEPT and tag != 0x00020000:
            record("remove", f"file meta {describe(tag)}", PROFILE_NAME, "names a system, not the data")
    ds.file_meta = new


def _convert_all(ds: Dataset) -> None:
    """Read every value, so that elements read with one VR encoding can be
    written with the other (a file whose meta says explicit VR but whose data
    set is implicit)."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                _convert_all(item)


def write_file(ds: Dataset, path: Path) -> list[tuple[int, int]]:
    """Write ``ds`` as a Part 10 file; returns the byte ranges that hold
    pixel samples (native pixel data, the entropy-coded data of compressed
    frames), which hold no text."""
    ts = UID(ds.file_meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    mismatch = implicit is not None and (implicit, little) != (ts.is_implicit_VR, ts.is_little_endian)
    # pydicom falls back to implicit VR when the data contradicts the meta, and then says so only per element
    if ts.is_transfer_syntax and (mismatch or not ts.is_implicit_VR and any(
            e.VR is None for e in ds._dict.values())):
        _convert_all(ds)
    try:
        encoded = encode_file(ds)
    except Exception:  # dcmwrite raises its own, exact error for the same dataset
        encoded = None
    if encoded is None:
        dcmwrite(path, ds, enforce_file_format=True)
        return []
    with open(path, "wb") as f:
        f.writelines(encoded.chunks)
    return encoded.samples


def write_dicomdir(ds: Dataset, path: Path) -> None:
    """Write a DICOMDIR with its record offsets recomputed for the new lengths.

    Records keep their order, so record *i* of the output is record *i* of
    the input; every offset that named an input record is pointed at the
    same record's new position."""
    records = ds.get("DirectoryRecordSequence") or []
    old_positions = {getattr(item, "seq_item_tell", None): i for i, item in enumerate(records)}
    links: list[tuple[Dataset, int, int]] = []  # (dataset, tag, record index)
    for holder, tags in [(ds, ROOT_OFFSETS)] + [(item, RECORD_OFFSETS) for item in records]:
        for tag in tags:
            if tag in holder._dict:
                value = holder[tag].value
                if value:
                    index = old_positions.get(value)
                    links.append((holder, tag, index if index is not None else -1))
    for item in records:
        for tag in OBSOLETE_RECORD_OFFSETS:
            if tag in item._dict:
                del item[tag]
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    if links:
        written = dcmread(BytesIO(buffer.getvalue()), force=True)
        new_positions = [item.seq_item_tell for item in written.DirectoryRecordSequence]
        for holder, tag, index in links:
            holder[tag].value = new_positions[index] if 0 <= index < len(new_positions) else 0
        buffer = BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
    Path(path).write_bytes(buffer.getvalue())
