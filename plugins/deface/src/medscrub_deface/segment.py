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
BRAIN_GUARD_MM = 4.0  # ...but never within this distance of the predicted brain

# Ears (``[deface] ears = true``): the outer ear lies beside the temporal
# lobes, level with their floor and the cerebellum, a little behind the
# middle of the brain's length.  The removed region is everything beside the
# head in that window farther than EAR_CLEARANCE_MM from the predicted brain:
# the pinna and the scalp around it, never the brain.  As fractions of the
# predicted brain's extent along the image's R, A and S axes, wide enough
# for large ears and a head tilted by up to about 25 degrees (docs/deface.md):
EAR_LATERAL = 0.5  # beyond this share of the brain's half width from its middle
EAR_FRONT_BACK = (0.12, 0.76)  # from the back of the brain
EAR_BELOW_MM = 45.0  # from this far below the brain's lowest point...
EAR_TOP = 0.65  # ...up to this share of its height
EAR_CLEARANCE_MM = 10.0


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


def ear_region(masks: Masks, affine: np.ndarray) -> np.ndarray:
    """The voxels where both ears lie, placed from the predicted brain (see
    EAR_* above); empty when no brain is predicted."""
    brain = masks.brain
    out = np.zeros(brain.shape, dtype=bool)
    idx = np.argwhere(brain)
    if not len(idx):
        return out
    affine = np.asarray(affine, dtype=float)
    ras = idx @ affine[:3, :3].T + affine[:3, 3]
    lo, hi = ras.min(0), ras.max(0)
    middle, size = (lo + hi) / 2, hi - lo
    zone = np.abs(_ras_axis(affine, brain.shape, 0) - middle[0]) > EAR_LATERAL * size[0] / 2
    a = _ras_axis(affine, brain.shape, 1)
    zone &= (a > lo[1] + EAR_FRONT_BACK[0] * size[1]) & (a < lo[1] + EAR_FRONT_BACK[1] * size[1])
    del a
    s = _ras_axis(affine, brain.shape, 2)
    zone &= (s > lo[2] - EAR_BELOW_MM) & (s < lo[2] + EAR_TOP * size[2])
    del s
    if not zone.any():
        return out
    box = []
    for others in ((1, 2), (0, 2), (0, 1)):
        hit = np.flatnonzero(zone.any(axis=others))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    box = tuple(box)
    out[box] = zone[box] & ~_within(brain[box], EAR_CLEARANCE_MM, grid.spacing_of(affine))
    return out


def _ras_axis(affine: np.ndarray, shape, axis: int) -> np.ndarray:
    """The RAS coordinate ``axis`` (mm) of every voxel, float32."""
    row = affine[axis].astype(np.float32)
    i, j, k = (np.arange(n, dtype=np.float32) for n in shape)
    return row[0] * i[:, None, None] + row[1] * j[None, :, None] + (row[2] * k + row[3])[None, None, :]


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
