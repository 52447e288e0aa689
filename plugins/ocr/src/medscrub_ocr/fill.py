"""Painting boxes over: black, or the local background."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .engines import Box


def _ring(pixels: np.ndarray, box: Box, width: int = 3) -> np.ndarray:
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = box
    ox0, oy0, ox1, oy1 = max(0, x0 - width), max(0, y0 - width), min(w, x1 + width), min(h, y1 + width)
    outer = pixels[oy0:oy1, ox0:ox1]
    keep = np.ones(outer.shape[:2], bool)
    keep[y0 - oy0:y1 - oy0, x0 - ox0:x1 - ox0] = False
    return outer[keep]


def background_value(pixels: np.ndarray, box: Box, indexed: bool = False) -> np.ndarray:
    """The value round a box: the median (per sample) of a 3-pixel ring, or
    for palette indices, whose order means nothing, the commonest index."""
    ring = _ring(pixels, box)
    if ring.size == 0:
        return np.zeros(pixels.shape[2:], pixels.dtype)
    if indexed:
        values, counts = np.unique(ring.reshape(-1), return_counts=True)
        return np.asarray(values[np.argmax(counts)], pixels.dtype)
    return np.median(ring, axis=0).astype(pixels.dtype)


def fill(pixels: np.ndarray, boxes: Sequence[Box], mode: str, black: np.ndarray | int = 0,
         indexed: bool = False) -> None:
    """Paint ``boxes`` of one frame (H x W or H x W x S) in place.

    ``black`` is the value that shows black (0, or a palette's darkest
    index).  Background values are all taken before any box is painted, so
    the order of the boxes does not matter."""
    if mode == "background":
        values = [background_value(pixels, b, indexed) for b in boxes]
    else:
        values = [np.asarray(black, pixels.dtype)] * len(boxes)
    for (x0, y0, x1, y1), value in zip(boxes, values, strict=True):
        pixels[y0:y1, x0:x1] = value
