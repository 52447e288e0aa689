"""Small pixel cleaners that use the volume hand-off, registered per test."""

from __future__ import annotations

import numpy as np

from medscrub import Change, Cleaner, hookimpl
from medscrub.volume import FEATURES

FORMATS = ("nifti", "dicom")


def _identity(asset, context):
    volume = context.pm.hook.medscrub_get_volume(asset=asset, context=context)
    if volume is None:
        return []
    assert context.pm.hook.medscrub_put_volume(asset=asset, volume=volume, context=context)
    return [Change("pixels", "volume", "test-identity", "unchanged")]


def _blank_corner(asset, context):
    volume = context.pm.hook.medscrub_get_volume(asset=asset, context=context)
    if volume is None:
        return []
    volume.data[:4, :4, :4] = 0
    assert context.pm.hook.medscrub_put_volume(asset=asset, volume=volume, context=context)
    return [Change("pixels", "volume", "test-blank-corner", "4x4x4 corner")]


def anterior(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """The voxels whose centre lies in front of the coronal plane y = 0 (RAS)."""
    ijk = np.indices(shape).reshape(3, -1)
    y = affine[1, :3] @ ijk + affine[1, 3]
    return (y > 0).reshape(shape)


def _blank_front(asset, context):
    """Set every voxel in front of y = 0 to the lowest value, as a defacer
    would: where that is depends only on the affine the format plugin gives."""
    volume = context.pm.hook.medscrub_get_volume(asset=asset, context=context)
    region = anterior(volume.data.shape, volume.affine)
    volume.data[region] = volume.data.min()
    volume.removed = FEATURES
    assert context.pm.hook.medscrub_put_volume(asset=asset, volume=volume, context=context)
    return [Change("pixels", "volume", "test-blank-front", f"{int(region.sum())} voxels")]


def _ours(asset) -> bool:
    return asset.format in FORMATS


class VolumeCleaners:
    @hookimpl
    def medscrub_register_cleaners(self, register):
        register(Cleaner("test-identity", "get and put back", _ours, _identity, volumes=True))
        register(Cleaner("test-blank-corner", "zero a corner", _ours, _blank_corner, volumes=True))
        register(Cleaner("test-blank-front", "blank what lies in front of y = 0", _ours, _blank_front, volumes=True))


plugin = VolumeCleaners()
