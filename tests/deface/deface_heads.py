"""Helpers for the defacer's tests: small copies of the shipped heads and
where the face lies in them.  Imported by name (the folder is on sys.path)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

CH2 = Path("/usr/share/mricron/templates/ch2.nii.gz")
CH2BET = Path("/usr/share/mricron/templates/ch2bet.nii.gz")


def _load(path: Path):
    if not path.is_file():
        pytest.skip(f"{path} is missing: apt-get install mricron-data")
    img = nib.load(str(path))
    return np.asanyarray(img.dataobj).astype(np.float32), img.affine


def halve(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 2 mm copy of a 1 mm volume (every second voxel), with its affine."""
    out = affine.copy()
    out[:3, :3] = affine[:3, :3] * 2
    return np.ascontiguousarray(data[::2, ::2, ::2]), out


def face_box(shape, affine, below: float = -20.0) -> np.ndarray:
    """Voxels in front of and below the brain where nose, lips and chin lie
    in the ch2/MNI space: anterior of y = +70 mm and below z = ``below`` mm
    (-20: under the eyes; the brow and the bridge of the nose above it are
    not all face)."""
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    return ((xyz[:, 1] > 70) & (xyz[:, 2] < below)).reshape(shape)
