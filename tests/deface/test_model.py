"""The network: it ships in the package and loads with no network access;
its masks come back on the input's grid for any orientation."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from deface_heads import face_box

from medscrub_deface import model
from medscrub_deface.segment import brain_region, predict, removal_region


def test_weights_ship_in_the_package_and_load_offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    folder = model.data_dir()
    weights = folder / model.WEIGHTS
    assert weights.is_file() and weights.stat().st_size < 8 * 2**20
    model.load.cache_clear()
    net, config = model.load()
    assert isinstance(net, model.UNet3D) and not net.training
    assert config.spacing > 0 and len(config.shape) == 3


def test_masks_have_the_input_grid_and_spare_the_brain(ch2):
    data, affine, brain = ch2
    masks = predict(data, affine)
    assert masks.labels.shape == data.shape and masks.labels.dtype == np.uint8
    removed = removal_region(masks, affine)
    face = face_box(data.shape, affine) & (data > 30)
    assert removed[face].mean() > 0.6  # most of nose, lips, chin
    assert (removed & brain).sum() <= 0.001 * brain.sum()
    strip = brain_region(masks)
    dice = 2 * (strip & brain).sum() / (strip.sum() + brain.sum())
    assert dice > 0.85


def _permuted(data, affine, perm, flip_first):
    """The same voxels stored in another axis order (and the first stored
    axis reversed), with the affine that keeps every voxel in place."""
    out = np.transpose(data, perm)
    a = affine[:, list(perm) + [3]].copy()
    if flip_first:
        out = out[::-1]
        f = np.eye(4)
        f[0, 0], f[0, 3] = -1, out.shape[0] - 1
        a = a @ f
    return np.ascontiguousarray(out), a


@pytest.mark.parametrize("perm, flip", [((1, 2, 0), True), ((2, 0, 1), False)], ids=["coronal-flipped", "sagittal"])
def test_stored_orientation_does_not_change_the_masks(ch2, perm, flip):
    data, affine, _ = ch2
    reference = predict(data, affine).labels
    other, other_affine = _permuted(data, affine, perm, flip)
    labels = predict(other, other_affine).labels
    expected, _ = _permuted(reference, affine, perm, flip)
    assert np.mean(labels == expected) > 0.995


def test_oblique_grid_gives_the_same_masks_in_space(ch2):
    """ch2 on a grid tilted 15 degrees and of 2.5 mm voxels: the masks,
    carried back to the original grid, agree with the original's."""
    import torch

    from medscrub_deface.grid import sample

    data, affine, _ = ch2
    a = np.radians(15)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    shape = (76, 92, 80)
    centre = affine[:3, :3] @ ((np.asarray(data.shape) - 1) / 2) + affine[:3, 3]
    oblique = np.eye(4)
    oblique[:3, :3] = rot * 2.5
    oblique[:3, 3] = centre - oblique[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    tilted = sample(torch.from_numpy(data)[None], affine, oblique, shape)[0].numpy()
    labels = predict(tilted, oblique).labels
    back = sample(torch.from_numpy(labels.astype(np.float32))[None], oblique, affine, data.shape, mode="nearest")[0]
    reference = predict(data, affine).labels
    inside = sample(torch.ones((1, *shape)), oblique, affine, data.shape, mode="nearest")[0].numpy() > 0.5
    for cls in (model.FACE, model.BRAIN):
        x, y = back.numpy()[inside] == cls, reference[inside] == cls
        assert 2 * (x & y).sum() / (x.sum() + y.sum()) > 0.85, model.CLASSES[cls]
