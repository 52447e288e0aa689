"""The ``deface`` and ``skull-strip`` pixel cleaners.

Both take the image through the core's volume hand-off
(``medscrub_get_volume`` / ``medscrub_put_volume``), so they work for every
format whose plugin implements it, and the format plugin writes the result
in the input's own format.  Removed voxels are set to the image's lowest
value (air: 0 in MR, about -1000 HU in CT).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from medscrub import Asset, Change, Preview
from medscrub.volume import FEATURES

from .options import DefaceOptions

DEFACE = "deface"
SKULL_STRIP = "skull-strip"
HEAD_MODALITIES = frozenset({"MR", "CT"})
DEFACE_HELP = "remove the face (nose, lips, eyes, chin) from head MR and CT volumes with a 3D U-Net; the brain is kept"
SKULL_STRIP_HELP = "keep only the brain of head MR and CT volumes (3D U-Net)"


def applies(asset: Asset) -> bool:
    if asset.format == "nifti":
        return True
    if asset.format == "dicom":  # one dataset, or a series (``datasets``) when the run groups them
        # MR and CT images: the modalities whose volumes show a face; a
        # radiograph, an ultrasound or a report passes untouched
        datasets = getattr(asset.data, "datasets", None) or [asset.data]
        return any(hasattr(ds, "PixelData") and str(getattr(ds, "Modality", "") or "").strip().upper() in HEAD_MODALITIES
                   for ds in datasets)
    return False


@lru_cache(maxsize=1)
def model_id() -> str:
    from .model import WEIGHTS, data_dir

    return hashlib.sha256((data_dir() / WEIGHTS).read_bytes()).hexdigest()[:12]


def _volume(asset: Asset, context, name: str):
    _threads(context)
    volume = context.pm.hook.medscrub_get_volume(asset=asset, context=context)
    if volume is None:
        # Asked to remove a face and cannot: the item must not leave as it is.
        asset.quarantine = (f"{name}: no 3D volume from the {asset.format} plugin (a 4D or RGB image, or an object "
                            "its plugin does not hand over as a volume); not written")
    return volume


def _threads(context) -> None:
    """torch uses this worker's share of the cores, not every core in each worker."""
    import torch

    cores = getattr(context, "cores", 0)
    if cores and torch.get_num_threads() != cores:
        torch.set_num_threads(cores)


def _previews(name: str, before: np.ndarray, after: np.ndarray, affine: np.ndarray, centre_vox,
              sides: bool = False) -> list[Preview]:
    """Three orthogonal slices through ``centre_vox``, and the head seen from
    the front (and from its right and left with ``sides``), before and after
    (the core keeps "before" for internal reports only)."""
    from .views import fronts, png, slices, to_ras, window
    from .views import sides as side_views

    lo, hi = window(to_ras(np.asarray(before, dtype=np.float32), affine)[0])
    front_before, front_after = fronts(before, after, affine)
    out = [
        Preview(f"{name}: three slices through the {'face' if name == DEFACE else 'brain'}",
                png(slices(before, affine, centre_vox, lo, hi)), png(slices(after, affine, centre_vox, lo, hi))),
        Preview(f"{name}: seen from the front (deeper surfaces darker)", png(front_before), png(front_after)),
    ]
    if sides:
        side_before, side_after = side_views(before, after, affine)
        out.append(Preview(f"{name}: seen from the right and the left (deeper surfaces darker)",
                           png(side_before), png(side_after)))
    return out


def _ras_centre(mask: np.ndarray, affine: np.ndarray):
    from .views import to_ras

    ras, _ = to_ras(mask, affine)
    idx = np.argwhere(ras)
    return idx.mean(0) if len(idx) else None


def _blank(asset: Asset, context, volume, region: np.ndarray, name: str, shown: np.ndarray,
           sides: bool = False) -> None:
    """Set ``region`` to the volume's lowest value, put the volume back in
    the asset's format and keep the pictures, centred on ``shown`` (and the
    head seen from both sides with ``sides``)."""
    data = np.asarray(volume.data)
    before = np.array(data, copy=True)
    data[region] = data.min()
    volume.data, volume.removed = data, FEATURES
    context.pm.hook.medscrub_put_volume(asset=asset, volume=volume, context=context)
    asset.previews += _previews(name, before, data, volume.affine, _ras_centre(shown, volume.affine), sides)


def options_of(context) -> DefaceOptions:
    options = context.options("deface") if context is not None else None
    return options if isinstance(options, DefaceOptions) else DefaceOptions()


def deface(asset: Asset, context) -> list[Change]:
    from .segment import ear_region, predict, removal_region

    volume = _volume(asset, context, DEFACE)
    if volume is None:
        return []
    ears = options_of(context).ears
    data = np.asarray(volume.data)
    masks = predict(data, volume.affine)
    face = removal_region(masks, volume.affine)
    if not face.any():
        asset.flags[DEFACE] = "no face found (a brain-only or non-head image?): pixels unchanged"
        return []
    region = face
    if ears:
        ear = ear_region(masks, volume.affine)
        if not ear.any():
            asset.flags[DEFACE] = "ears not removed: no brain found to place them by"
        region = face | ear
    removed = int(region.sum())
    _blank(asset, context, volume, region, DEFACE, face, sides=ears)
    head = int((masks.labels > 0).sum())
    what = "face and ears" if ears else "face"
    return [Change("pixels", "volume", DEFACE,
                   f"{removed} voxels of the {what} set to the background ({100 * removed / max(head, 1):.1f}% of "
                   f"the head); unet {model_id()}, {masks.seconds:.1f} s")]


def skull_strip(asset: Asset, context) -> list[Change]:
    from .segment import brain_region, predict

    volume = _volume(asset, context, SKULL_STRIP)
    if volume is None:
        return []
    data = np.asarray(volume.data)
    masks = predict(data, volume.affine)
    brain = brain_region(masks)
    if not brain.any():
        asset.quarantine = f"{SKULL_STRIP}: no brain found; not written"
        return []
    outside = ~brain
    _blank(asset, context, volume, outside, SKULL_STRIP, brain)
    return [Change("pixels", "volume", SKULL_STRIP,
                   f"{int(outside.sum())} voxels outside the brain set to the background ({int(brain.sum())} kept); "
                   f"unet {model_id()}, {masks.seconds:.1f} s")]
