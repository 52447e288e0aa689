"""The working grid: where a head is resampled for the network, and back.

Any input (axial, sagittal, coronal or oblique; any voxel size) is looked at
through its voxel-to-RAS affine.  The network sees a box of ``config.shape``
voxels of ``config.spacing`` mm whose axes are R, A and S, centred left-right
and front-back on the head and hung from the top of the head.  Training
(with a random tilt of the box) and inference place it by the same rule.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

SLAB_VOXELS = 4_000_000  # full-resolution voxels mapped at once: bounds memory


def spacing_of(affine: np.ndarray) -> np.ndarray:
    return np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(0))


def box_affine(centre: np.ndarray, shape, spacing: float, rotation: np.ndarray | None = None) -> np.ndarray:
    """Box voxel -> RAS mm, for a box centred on ``centre`` (mm)."""
    half = (np.asarray(shape, dtype=float) - 1) / 2
    rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=float)
    out = np.eye(4)
    out[:3, :3] = rot * spacing
    out[:3, 3] = np.asarray(centre, dtype=float) - out[:3, :3] @ half
    return out


def place(points: np.ndarray, shape, spacing: float, top_margin: float) -> np.ndarray:
    """The box centre for a head whose foreground is ``points`` (N x 3, RAS mm):
    mean position left-right and front-back, top of the head ``top_margin``
    below the box top."""
    top = float(np.percentile(points[:, 2], 99.5))
    centre = points.mean(0)
    centre[2] = top + top_margin - (shape[2] - 1) * spacing / 2
    return centre


def _normalised_grid(points_vox: torch.Tensor, size) -> torch.Tensor:
    """Voxel indices (..., 3) in (i, j, k) -> grid_sample coordinates (..., 3)
    in (k, j, i) order, align_corners=True."""
    scale = torch.tensor([2.0 / max(n - 1, 1) for n in size], dtype=points_vox.dtype)
    g = points_vox * scale - 1.0
    return g.flip(-1)


def _indices(shape, start: int = 0, stop: int | None = None) -> torch.Tensor:
    stop = shape[0] if stop is None else stop
    axes = [torch.arange(start, stop, dtype=torch.float32), *(torch.arange(n, dtype=torch.float32) for n in shape[1:])]
    grids = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([*grids, torch.ones_like(grids[0])], -1)


def sample(volume: torch.Tensor, volume_affine: np.ndarray, out_affine: np.ndarray, out_shape,
           mode: str = "bilinear", padding: float = 0.0) -> torch.Tensor:
    """Resample ``volume`` (C, I, J, K) onto the grid ``out_affine``/``out_shape``."""
    m = torch.tensor(np.linalg.inv(volume_affine) @ out_affine, dtype=torch.float32)
    idx = _indices(tuple(out_shape)) @ m.T
    grid = _normalised_grid(idx[..., :3], volume.shape[1:])[None]
    src = volume[None].float()
    if padding:
        src = src - padding
    out = F.grid_sample(src, grid.to(src.device), mode=mode, padding_mode="zeros", align_corners=True)[0]
    return out + padding if padding else out


def pool_for(volume: np.ndarray, affine: np.ndarray, spacing: float) -> tuple[torch.Tensor, np.ndarray]:
    """Average neighbouring voxels so that none is much finer than ``spacing``
    (anti-aliasing before the grid is sampled); the new affine goes with it."""
    factors = [max(1, int(math.floor(spacing / s + 1e-6))) for s in spacing_of(affine)]
    t = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    if any(f > 1 for f in factors):
        t = F.avg_pool3d(t, kernel_size=factors, stride=factors, ceil_mode=True, count_include_pad=False)
    pooled = np.asarray(affine, dtype=float) @ np.block([
        [np.diag(factors).astype(float), ((np.asarray(factors, dtype=float) - 1) / 2)[:, None]],
        [np.zeros((1, 3)), np.ones((1, 1))]])
    return t[0], pooled


def to_full(probs: torch.Tensor, box: np.ndarray, shape, affine: np.ndarray) -> np.ndarray:
    """Classes at full resolution: the face and brain probabilities of the
    box (C, X, Y, Z) interpolated trilinearly at every voxel of the input
    grid and thresholded at one half, so edges are smooth whatever the
    input's voxels.  uint8: FACE, BRAIN, or 0 for the rest (and outside the box)."""
    from .model import BRAIN, FACE

    m = np.linalg.inv(box) @ np.asarray(affine, dtype=float)  # input voxel -> box voxel
    size = probs.shape[1:]
    scale = np.array([2.0 / max(n - 1, 1) for n in size])
    # grid_sample coordinates, linear in the input indices: built by broadcasting
    lin = np.ascontiguousarray((m[:3, :3] * scale[:, None])[::-1].T)  # (3 input axes, 3 grid coords in k, j, i order)
    off = np.ascontiguousarray((m[:3, 3] * scale - 1.0)[::-1])
    src = probs[[FACE, BRAIN]][None].float()
    out = np.zeros(tuple(shape), dtype=np.uint8)
    nj, nk = shape[1], shape[2]
    tj = torch.arange(nj, dtype=torch.float32)[:, None, None] * torch.tensor(lin[1], dtype=torch.float32)
    tk = torch.arange(nk, dtype=torch.float32)[None, :, None] * torch.tensor(lin[2], dtype=torch.float32)
    plane = tj + tk + torch.tensor(off, dtype=torch.float32)  # (J, K, 3)
    per = max(1, SLAB_VOXELS // max(1, nj * nk))
    li = torch.tensor(lin[0], dtype=torch.float32)
    for start in range(0, shape[0], per):
        stop = min(shape[0], start + per)
        ti = torch.arange(start, stop, dtype=torch.float32)[:, None, None, None] * li
        grid = (plane[None] + ti)[None]
        p = F.grid_sample(src, grid.to(src.device), mode="bilinear", padding_mode="zeros", align_corners=True)[0]
        face, brain = (p[0] > 0.5).to("cpu").numpy(), (p[1] > 0.5).to("cpu").numpy()
        block = out[start:stop]
        block[face] = FACE
        block[brain] = BRAIN
    return out


def normalise(image: torch.Tensor) -> torch.Tensor:
    """Intensities to about 0..1 by robust percentiles, the same for every
    modality: training images pass through it too."""
    flat = image.flatten()
    if flat.numel() > 2_000_000:
        flat = flat[:: flat.numel() // 2_000_000 + 1]
    lo = torch.quantile(flat, 0.01)
    hi = torch.quantile(flat, 0.995)
    scale = hi - lo if float(hi - lo) > 1e-6 else torch.tensor(1.0)
    return ((image - lo) / scale).clamp(-0.2, 1.5)


def otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins=bins)
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * mids)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(mids[int(np.argmax(between))])


def foreground_points(volume: torch.Tensor, affine: np.ndarray) -> np.ndarray:
    """RAS mm of the voxels brighter than the background (Otsu's threshold
    on a coarse copy), for :func:`place`."""
    v = volume[0] if volume.ndim == 4 else volume
    arr = v.to("cpu").numpy()
    sub = arr[::2, ::2, ::2] if arr.size > 3_000_000 else arr
    t = otsu(sub[np.isfinite(sub)])
    ijk = np.argwhere(arr > t)
    if len(ijk) < 10:
        ijk = np.argwhere(np.ones_like(arr, dtype=bool))
    if len(ijk) > 400_000:
        ijk = ijk[:: len(ijk) // 400_000 + 1]
    return ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
