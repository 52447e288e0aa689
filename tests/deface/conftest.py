"""Fixtures for the defacer's tests: the shipped heads, skipped with the
package to install where one is missing, and small copies of them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("medscrub_deface")
nib = pytest.importorskip("nibabel")

from deface_heads import CH2, CH2BET, _load, halve  # noqa: E402


@pytest.fixture(scope="session")
def ch2():
    """ch2 at 2 mm and its brain mask (the non-zero voxels of ch2bet)."""
    data, affine = _load(CH2)
    brain, _ = _load(CH2BET)
    d, a = halve(data, affine)
    return d, a, halve(brain > 0, affine)[0]


@pytest.fixture(scope="session")
def mni_brain():
    try:
        from importlib.resources import files

        path = Path(str(files("nilearn.datasets") / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"))
    except ModuleNotFoundError:
        pytest.skip("nilearn is missing: pip install nilearn")
    img = nib.load(str(path))
    return halve(np.asanyarray(img.dataobj).astype(np.float32), img.affine)
