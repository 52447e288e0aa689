"""The volume hand-off for NIfTI and Analyze images.

``get_volume`` gives a cleaner the voxels as nibabel scales them (slope and
intercept applied) with the image's RAS+ affine; ``put_volume`` turns the
cleaned voxels back into the file's own data type, scaling and byte order,
and the writer writes them in place of the original data block.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from medscrub import MedscrubError
from medscrub.volume import Volume

from .reader import NiftiData

AFFINE_TOLERANCE = 1e-4


def _image(data: NiftiData):
    nf = data.nifti
    try:
        return nib.load(str(nf.header_path))
    except Exception as e:  # nibabel raises many kinds for files it cannot map
        raise MedscrubError(f"nibabel cannot load the image: {e}") from None


def _spatial_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The 3D shape of an image whose further dimensions are all 1, else None."""
    if len(shape) < 3 or any(n != 1 for n in shape[3:]):
        return None
    return tuple(shape[:3])


def get_volume(asset, context) -> Volume | None:
    if asset.format != "nifti":
        return None
    data: NiftiData = asset.data
    img = _image(data)
    shape = _spatial_shape(img.shape)
    if shape is None or img.get_data_dtype().fields is not None:
        return None  # 4D series and RGB images are not volumes a cleaner can take
    if data.volume is not None:
        voxels = np.array(data.volume, copy=True)
    else:
        voxels = np.asanyarray(img.dataobj).reshape(shape, order="F")
    return Volume(data=voxels, affine=np.array(img.affine, dtype=float), modality=data.modality,
                  meta={"format": "nifti", "kind": data.nifti.kind})


def put_volume(asset, volume: Volume, context) -> bool | None:
    if asset.format != "nifti":
        return None
    data: NiftiData = asset.data
    img = _image(data)
    shape = _spatial_shape(img.shape)
    voxels = np.asarray(volume.data)
    if shape is None or voxels.shape != shape:
        raise MedscrubError(f"the cleaned volume has shape {voxels.shape}, the image {img.shape}")
    if not np.allclose(np.asarray(volume.affine, dtype=float), img.affine, atol=AFFINE_TOLERANCE):
        raise MedscrubError("the cleaned volume has another affine than the image; volumes go back in place")
    proxy = img.dataobj
    dtype = np.dtype(proxy.dtype)  # the on-disk type, byte order included
    slope = float(getattr(proxy, "slope", 1.0) or 1.0)
    inter = float(getattr(proxy, "inter", 0.0) or 0.0)
    raw = voxels.astype(np.float64) if (slope != 1.0 or inter != 0.0) else voxels
    if slope != 1.0 or inter != 0.0:
        raw = (raw - inter) / slope
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        raw = np.clip(np.rint(raw), info.min, info.max)
    data.nifti.new_data = np.asarray(raw).astype(dtype, copy=False).reshape(img.shape, order="F").tobytes(order="F")
    data.volume = np.array(voxels, copy=True)
    return True
