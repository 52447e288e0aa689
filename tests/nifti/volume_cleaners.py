"""Two tiny pixel cleaners that use the volume hand-off, registered per test."""

from __future__ import annotations

from medscrub import Change, Cleaner, hookimpl


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


class VolumeCleaners:
    @hookimpl
    def medscrub_register_cleaners(self, register):
        register(Cleaner("test-identity", "get and put back", lambda asset: asset.format == "nifti", _identity))
        register(Cleaner("test-blank-corner", "zero a corner", lambda asset: asset.format == "nifti", _blank_corner))


plugin = VolumeCleaners()
