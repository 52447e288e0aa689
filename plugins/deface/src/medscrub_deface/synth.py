"""Synthetic training images from label maps (domain randomisation).

In the manner of SynthSeg and SynthStrip: every sample paints a head's
tissue classes with random intensities, MR-like (any order of brightness) or
CT-like (bright bone, grey soft tissue), through a random tilt, scale and
smooth deformation, with blur (resolution and thick slices), a bias field,
noise, a gamma curve and sometimes a cut field of view.  The network never
sees one contrast often enough to depend on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .grid import _indices, _normalised_grid, box_affine, normalise, place
from .labels import Head
from .model import BACKGROUND, NetConfig


@dataclass(frozen=True)
class SynthConfig:
    pitch_deg: float = 20.0  # nodding, about the R axis
    roll_deg: float = 10.0
    yaw_deg: float = 10.0
    scale: float = 0.12  # +/- fraction
    shift_mm: float = 8.0  # standard deviation of the box placement error
    warp_voxels: float = 1.0  # standard deviation of the smooth deformation, in working voxels
    ct_fraction: float = 0.25
    max_blur: float = 1.0  # voxels
    thick_slice_fraction: float = 0.2
    max_bias: float = 0.3
    max_noise: float = 0.05
    crop_fraction: float = 0.3


def _rotation(rng: np.random.Generator, c: SynthConfig) -> np.ndarray:
    a, b, g = (math.radians(rng.uniform(-d, d)) for d in (c.pitch_deg, c.roll_deg, c.yaw_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(g), -math.sin(g), 0], [math.sin(g), math.cos(g), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _smooth_field(rng: np.random.Generator, shape, channels: int, control: int = 5) -> torch.Tensor:
    coarse = torch.from_numpy(rng.standard_normal((1, channels, control, control, control)).astype(np.float32))
    return F.interpolate(coarse, size=tuple(shape), mode="trilinear", align_corners=True)[0]


def _blur(image: torch.Tensor, sigmas) -> torch.Tensor:
    """Separable Gaussian blur of (X, Y, Z) with a sigma (voxels) per axis."""
    out = image[None, None]
    for axis, sigma in enumerate(sigmas):
        if sigma < 0.2:
            continue
        radius = max(1, int(math.ceil(3 * sigma)))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-0.5 * (x / sigma) ** 2)
        k = (k / k.sum()).reshape([1, 1] + [len(x) if a == axis else 1 for a in range(3)])
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        out = F.conv3d(F.pad(out, pad, mode="replicate"), k)
    return out[0, 0]


class Synthesiser:
    """Samples from the heads' label maps; ``wide_face``: the face of both
    face masks (``Head.wide_target``, where a head has it)."""

    def __init__(self, heads: dict[str, Head], weights: dict[str, float], net: NetConfig, synth: SynthConfig,
                 wide_face: bool = False) -> None:
        self.names = [n for n in weights if weights[n] > 0]
        p = np.array([weights[n] for n in self.names], dtype=float)
        self.p = p / p.sum()
        self.net, self.c = net, synth
        self.maps, self.affines, self.points = {}, {}, {}
        for n in self.names:
            h = heads[n]
            target = h.wide_target if wide_face and h.wide_target is not None else h.target
            self.maps[n] = torch.from_numpy(np.stack([h.tissue, target]).astype(np.float32))
            self.affines[n] = h.affine
            ijk = np.argwhere(h.target > 0)[::7]
            self.points[n] = ijk @ h.affine[:3, :3].T + h.affine[:3, 3]

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One (image (1, X, Y, Z), target (X, Y, Z)) pair."""
        c, net = self.c, self.net
        name = self.names[rng.choice(len(self.names), p=self.p)]
        shape = net.shape
        centre = place(self.points[name], shape, net.spacing, net.top_margin) + rng.normal(0, c.shift_mm, 3)
        scale = rng.uniform(1 - c.scale, 1 + c.scale) * rng.uniform(0.96, 1.04, 3)
        box = box_affine(centre, shape, net.spacing, _rotation(rng, c) * scale[None, :])
        idx = _indices(shape)
        idx[..., :3] += _smooth_field(rng, shape, 3).permute(1, 2, 3, 0) * c.warp_voxels
        src = idx @ torch.tensor(np.linalg.inv(self.affines[name]) @ box, dtype=torch.float32).T
        maps = self.maps[name]
        grid = _normalised_grid(src[..., :3], maps.shape[1:])[None]
        sampled = F.grid_sample(maps[None], grid, mode="nearest", padding_mode="zeros", align_corners=True)[0]
        tissue, target = sampled[0].long(), sampled[1].long()

        ct = rng.random() < c.ct_fraction
        if ct:
            lut = [rng.uniform(0, 0.03), rng.uniform(0.75, 1.0), rng.uniform(0.3, 0.45), rng.uniform(0.15, 0.35),
                   *(rng.uniform(0.36, 0.46) for _ in range(3))]
        else:
            lut = [rng.uniform(0, 0.15), *(rng.uniform(0.05, 1.0) for _ in range(6))]
        spread = torch.tensor([rng.uniform(0, 0.06) for _ in range(7)], dtype=torch.float32)
        image = torch.tensor(lut, dtype=torch.float32)[tissue] + spread[tissue] * torch.randn(
            shape, generator=torch.Generator().manual_seed(int(rng.integers(2**31))))

        sigmas = [rng.uniform(0, c.max_blur) for _ in range(3)]
        if rng.random() < c.thick_slice_fraction:
            sigmas[int(rng.integers(3))] = rng.uniform(1.0, 2.0)
        image = _blur(image, sigmas)
        if not ct:
            image = image * torch.exp(_smooth_field(rng, shape, 1, 4)[0] * rng.uniform(0, c.max_bias))
        noise = rng.uniform(0, c.max_noise)
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        image = image + noise * torch.randn(shape, generator=gen)
        if not ct:
            image = image.abs() ** float(np.exp(rng.normal(0, 0.2)))

        if rng.random() < c.crop_fraction:
            axis = int(rng.choice(3, p=[0.2, 0.2, 0.6]))
            inside = (target > 0).nonzero()[:, axis]
            if len(inside):
                lo, hi = int(inside.min()), int(inside.max())
                cut = int(rng.integers(0, max(1, (hi - lo) // 5)))
                sl = [slice(None)] * 3
                sl[axis] = slice(hi - cut, None) if rng.random() < 0.5 else slice(None, lo + cut)
                image[tuple(sl)] = lut[0]
                target[tuple(sl)] = BACKGROUND
        return normalise(image)[None], target
