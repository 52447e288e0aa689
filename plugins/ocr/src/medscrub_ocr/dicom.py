"""Burned-in text in DICOM pixel data: decode, view, fill, encode.

Pixels are decoded by pydicom (compressed transfer syntaxes through
pylibjpeg, its JPEG, JPEG-LS/JPEG 2000 and RLE plugins).  Colour comes out
as RGB: YBR_FULL, YBR_FULL_422, YBR_RCT and YBR_ICT are converted by the
decoder.  A changed image is written back by medscrub-dicom's
``pixels.store`` (uncompressed little endian; see there), with the Image
Pixel module set to match: PhotometricInterpretation RGB and
PlanarConfiguration 0 for colour; the palette kept for PALETTE COLOR, whose
indices are painted with the palette's own black or background index.
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset
from pydicom.pixels import apply_color_lut

from medscrub import BadInput
from medscrub_dicom.pixels import decode, has_pixels, store
from medscrub_dicom.writer import transfer_syntax

from .views import to_uint8

# Photometric interpretations the decoder hands over as RGB.
COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420", "YBR_PARTIAL_422"}
NAME = "erase-text"

__all__ = ["COLOUR", "DicomImage", "has_pixels", "transfer_syntax"]


class DicomImage:
    """The decoded frames of a dataset and how to show and paint them."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        if int(ds.get("BitsAllocated", 0) or 0) == 1:
            raise BadInput("erase-text: 1-bit pixel data cannot carry erasable text boxes; not supported")
        array = decode(ds, NAME)
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
        array = self.array if self.frames_count > 1 else self.array[0]
        if self.samples == 3:
            photometric = "RGB"  # the decoder converted YBR; planar configuration becomes 0
        elif self.photometric in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"):
            photometric = self.photometric
        else:
            raise BadInput(f"erase-text cannot write photometric interpretation {self.photometric!r}")
        return store(self.ds, array, photometric, NAME)
