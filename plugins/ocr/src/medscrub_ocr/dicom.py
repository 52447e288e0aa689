"""Burned-in text in DICOM pixel data: decode, view, fill, encode.

Pixels are decoded by pydicom (compressed transfer syntaxes through
pylibjpeg, its JPEG, JPEG-LS/JPEG 2000 and RLE plugins).  Colour comes out
as RGB: YBR_FULL, YBR_FULL_422, YBR_RCT and YBR_ICT are converted by the
decoder.  A changed image is written back uncompressed, little endian, with
the Image Pixel module set to match (PhotometricInterpretation RGB and
PlanarConfiguration 0 for colour; the palette kept for PALETTE COLOR, whose
indices are painted with the palette's own black or background index).
A compressed input leaves Explicit VR Little Endian; an uncompressed little
endian input keeps its transfer syntax; big endian becomes Explicit VR Little
Endian.  LossyImageCompression and its ratio and method are kept: pixels
that were once lossy compressed stay so flagged (PS3.3 C.7.6.1.1.5).
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import UID, ExplicitVRLittleEndian

from medscrub import BadInput

from .views import to_uint8

PIXEL_DATA = 0x7FE00010
# Photometric interpretations the decoder hands over as RGB.
COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420", "YBR_PARTIAL_422"}
LUT_DATA = (0x00281201, 0x00281202, 0x00281203, 0x00281221, 0x00281222, 0x00281223)


def has_pixels(ds: Dataset) -> bool:
    return PIXEL_DATA in ds._dict


def transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    value = meta.get("TransferSyntaxUID") if meta is not None else None
    if value:
        return UID(value)
    implicit, little = ds.original_encoding
    if implicit in (None, True):
        return UID("1.2.840.10008.1.2")
    return ExplicitVRLittleEndian if little else UID("1.2.840.10008.1.2.2")


class DicomImage:
    """The decoded frames of a dataset and how to show and paint them."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        if int(ds.get("BitsAllocated", 0) or 0) == 1:
            raise BadInput("erase-text: 1-bit pixel data cannot carry erasable text boxes; not supported")
        try:
            array = ds.pixel_array
        except Exception as e:  # every decoder raises its own kind
            raise BadInput(f"erase-text cannot decode the pixel data: {type(e).__name__}: {e}") from None
        self.frames_count = int(ds.get("NumberOfFrames", 1) or 1)
        self.samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if self.frames_count == 1:
            array = array[None]
        self.original = array  # as decoded, for the "before" pictures
        self.array = np.array(array, copy=True)  # (frames, rows, columns[, samples]), painted in place
        self.indexed = self.photometric == "PALETTE COLOR"
        self._window: tuple[float, float] | None = None
        self._lut: np.ndarray | None = None
        if self.indexed:
            self._lut = self._palette()
        elif self.array.dtype != np.uint8:
            sample = self.array[:: max(1, self.frames_count // 8)]
            low, high = (float(x) for x in np.percentile(sample, (0.1, 99.9)))
            self._window = (low, high)

    def _palette(self) -> np.ndarray:
        """Index -> 8-bit RGB, over every index the pixels can hold."""
        bits = int(self.ds.get("BitsStored", self.array.dtype.itemsize * 8))
        indices = np.arange(min(1 << bits, 1 << 16), dtype=self.array.dtype)
        colours = apply_color_lut(indices, self.ds)
        if colours.dtype != np.uint8:
            peak = float(colours.max()) or 1.0
            colours = (colours.astype(np.float32) * (255.0 / (65535.0 if peak > 255 else 255.0))).astype(np.uint8)
        return colours

    def view(self, values: np.ndarray) -> np.ndarray:
        """An 8-bit RGB (or grey) picture of one frame's stored values."""
        if self._lut is not None:
            return self._lut[np.clip(values, 0, len(self._lut) - 1)]
        if self._window is not None:
            picture = to_uint8(values, *self._window)
        else:
            picture = values.astype(np.uint8, copy=False)
        if self.photometric == "MONOCHROME1":
            picture = 255 - picture
        return picture

    def frame(self, i: int, original: bool = False) -> np.ndarray:
        picture = self.view((self.original if original else self.array)[i])
        return picture if picture.ndim == 3 else np.repeat(picture[:, :, None], 3, axis=2)

    def black(self) -> np.ndarray | int:
        """The stored value that shows black."""
        if self._lut is not None:
            return int(np.argmin(self._lut.astype(np.int32).sum(axis=1)))
        info = np.iinfo(self.array.dtype) if self.array.dtype.kind in "ui" else None
        if self.photometric == "MONOCHROME1":
            bits = int(self.ds.get("BitsStored", 8) or 8)
            if info is not None and info.min == 0:
                return (1 << bits) - 1
            return self.array.max()
        if info is not None and info.min < 0:
            return self.array.min()
        return 0

    def store(self) -> str:
        """Put the painted frames back into the dataset; the new transfer syntax."""
        ds = self.ds
        ts = transfer_syntax(ds)
        array = self.array if self.frames_count > 1 else self.array[0]
        if self.samples == 3:
            photometric = "RGB"  # the decoder converted YBR; planar configuration becomes 0
        elif self.photometric in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"):
            photometric = self.photometric
        else:
            raise BadInput(f"erase-text cannot write photometric interpretation {self.photometric!r}")
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
