"""Putting changed pixels back into a dataset, for every pixel cleaner.

A changed image is written uncompressed and little endian: a compressed
input leaves as Explicit VR Little Endian, an uncompressed little endian one
keeps its transfer syntax (implicit or explicit VR), and big endian becomes
Explicit VR Little Endian with its palette data swapped to match.
LossyImageCompression and its ratio and method are kept: pixels that were
once lossy compressed stay so flagged (PS3.3 C.7.6.1.1.5).  Decoding a
compressed input needs the pixel codecs pydicom uses (pylibjpeg and its
plugins, or GDCM).
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from medscrub import BadInput

from .writer import transfer_syntax

PIXEL_DATA = 0x7FE00010
LUT_DATA = (0x00281201, 0x00281202, 0x00281203, 0x00281221, 0x00281222, 0x00281223)
# What pydicom's encoder for native pixel data takes.
STORABLE = (np.uint8, np.int8, np.uint16, np.int16)


def has_pixels(ds: Dataset) -> bool:
    return PIXEL_DATA in ds._dict


def decode(ds: Dataset, who: str) -> np.ndarray:
    """The stored values of every frame, as pydicom decodes them."""
    try:
        return ds.pixel_array
    except Exception as e:  # every decoder raises its own kind
        raise BadInput(f"{who} cannot decode the pixel data: {type(e).__name__}: {e}") from None


def store(ds: Dataset, array: np.ndarray, photometric: str, who: str) -> str:
    """Put ``array`` (frames, rows, columns[, samples], or one frame without
    the first axis) into ``ds`` as native pixel data; the transfer syntax it
    is written in."""
    if array.dtype.type not in STORABLE:
        raise BadInput(f"{who} cannot write {array.dtype} pixel data (8 or 16 bits only)")
    ts = UID(transfer_syntax(ds))
    bits_stored = int(ds.get("BitsStored", array.dtype.itemsize * 8) or array.dtype.itemsize * 8)
    if not ts.is_little_endian:
        _swap_lut_data(ds)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # pydicom sets Rows, Columns, SamplesPerPixel, PlanarConfiguration,
    # BitsAllocated/Stored, HighBit, PixelRepresentation and NumberOfFrames,
    # and leaves compressed transfer syntaxes for Explicit VR Little Endian
    ds.set_pixel_data(array, photometric, bits_stored, generate_instance_uid=False)
    return str(ds.file_meta.TransferSyntaxUID)


def _swap_lut_data(ds: Dataset) -> None:
    """Palette data (OW) read from a big endian file keeps its bytes as
    stored; written little endian they must be swapped."""
    for tag in LUT_DATA:
        elem = ds._dict.get(tag)
        if elem is None:
            continue
        elem = ds[tag]
        if elem.VR in ("OW", "US or OW", "US or SS or OW") and isinstance(elem.value, bytes | bytearray):
            elem.value = np.frombuffer(elem.value, ">u2").astype("<u2").tobytes()
            elem.VR = "OW"
