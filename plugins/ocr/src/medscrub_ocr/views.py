"""8-bit RGB views of stored pixels, for the detector and the QA pictures."""

from __future__ import annotations

import io
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from .engines import Box

PREVIEW_SIDE = 1024  # QA pictures are at most this wide or high


def to_uint8(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Stretch any numeric array to 0..255 between ``low`` and ``high``
    (default: its own 0.1 and 99.9 percentiles, so one hot pixel does not
    darken the rest)."""
    if values.dtype == np.uint8:
        return values
    v = values.astype(np.float32)
    if low is None or high is None:
        low, high = (float(x) for x in np.percentile(v, (0.1, 99.9)))
    if high <= low:
        high = low + 1
    return np.clip((v - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)


def as_rgb(view: np.ndarray) -> np.ndarray:
    if view.ndim == 2:
        return np.repeat(view[:, :, None], 3, axis=2)
    if view.shape[2] == 4:
        return np.ascontiguousarray(view[:, :, :3])
    return view


def png(rgb: np.ndarray, boxes: Sequence[Box] = (), colour: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """PNG bytes of an 8-bit RGB picture with box outlines, at most
    PREVIEW_SIDE on its longer side."""
    picture = np.ascontiguousarray(as_rgb(rgb)).copy()
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(picture, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), colour, 1)
    image = Image.fromarray(picture)
    if max(image.size) > PREVIEW_SIDE:
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def boxes_text(frames: Sequence[Sequence[Box]]) -> str:
    """The boxes of every frame, compact, for the manifest: frames with the
    same boxes are given once as a range: ``0-119:x0,y0,x1,y1 x0,...;120:...``."""
    parts: list[str] = []
    start = 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or list(frames[i]) != list(frames[start]):
            if frames[start]:
                span = f"{start}" if i - 1 == start else f"{start}-{i - 1}"
                parts.append(span + ":" + " ".join(",".join(str(int(v)) for v in b) for b in frames[start]))
            start = i
    return ";".join(parts)
