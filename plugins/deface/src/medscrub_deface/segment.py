"""Inference: a volume in, full-resolution face and brain masks out.

1. Average neighbouring voxels down to about the working spacing (no
   aliasing from fine inputs).
2. Find the head (Otsu's threshold) and place the RAS box on it.
3. Resample into the box, normalise, run the U-Net, softmax.
4. Interpolate the four probabilities trilinearly at every input voxel and
   take the most probable class, so mask edges are smooth at full
   resolution whatever the orientation and voxel size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from . import grid
from .model import BRAIN, FACE, load

FACE_GROW_MM = 6.0  # the removed region reaches this far past the predicted face...
BRAIN_GUARD_MM = 2.0  # ...but never within this distance of the predicted brain


@dataclass
class Masks:
    labels: np.ndarray  # uint8 per input voxel: FACE, BRAIN, or 0 for the rest
    box: np.ndarray  # the working box's voxel -> RAS affine
    seconds: float

    @property
    def brain(self) -> np.ndarray:
        return self.labels == BRAIN

    @property
    def face(self) -> np.ndarray:
        return self.labels == FACE


def predict(data: np.ndarray, affine: np.ndarray, weights: str | None = None) -> Masks:
    import time

    start = time.perf_counter()
    net, config = load(weights)
    affine = np.asarray(affine, dtype=float)
    pooled, pooled_affine = grid.pool_for(data, affine, config.spacing)
    points = grid.foreground_points(pooled, pooled_affine)
    box = grid.box_affine(grid.place(points, config.shape, config.spacing, config.top_margin),
                          config.shape, config.spacing)
    floor = float(pooled.min())
    image = grid.sample(pooled, pooled_affine, box, config.shape, padding=floor)
    x = grid.normalise(image)[None]
    dev = next(net.parameters()).device
    with torch.inference_mode():
        probs = net(x.to(dev)).softmax(1)[0]
        labels = grid.to_full(probs, box, data.shape, affine)
    return Masks(labels, box, time.perf_counter() - start)


def removal_region(masks: Masks, affine: np.ndarray) -> np.ndarray:
    """The voxels defacing sets to the background: the predicted face grown
    by FACE_GROW_MM, less everything within BRAIN_GUARD_MM of the predicted
    brain."""
    spacing = grid.spacing_of(affine)
    face = masks.face
    out = np.zeros(face.shape, dtype=bool)
    idx = np.argwhere(face)
    if not len(idx):
        return out
    # Work on the face's bounding box, widened by both radii: dilating the
    # whole volume costs seconds, the face's corner of it little.
    reach = np.ceil((FACE_GROW_MM + BRAIN_GUARD_MM) / spacing).astype(int) + 1
    lo = np.maximum(idx.min(0) - reach, 0)
    hi = np.minimum(idx.max(0) + reach + 1, face.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    region = _within(face[box], FACE_GROW_MM, spacing)
    brain = masks.brain[box]
    if brain.any():
        brain = _within(brain, BRAIN_GUARD_MM, spacing)
    out[box] = region & ~brain
    return out


def _within(mask: np.ndarray, mm: float, spacing: np.ndarray) -> np.ndarray:
    """The voxels at most ``mm`` from ``mask`` (a dilation by a ball), from
    the exact Euclidean distance: time and memory grow with the box, not
    with the ball."""
    if mm <= 0:
        return mask
    return ndimage.distance_transform_edt(~mask, sampling=spacing) <= mm + 1e-6


def brain_region(masks: Masks) -> np.ndarray:
    """The brain mask, its holes filled and only its largest part kept."""
    brain = masks.brain
    if not brain.any():
        return brain
    lab, n = ndimage.label(brain)
    if n > 1:
        sizes = ndimage.sum(brain, lab, range(1, n + 1))
        brain = lab == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(brain)
