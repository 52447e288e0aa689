"""The volume hand-off between format plugins and pixel cleaners.

A pixel cleaner that works on 3D images (the defacer, the skull stripper)
asks ``context.pm.hook.medscrub_get_volume(asset=..., context=...)`` for the
image of any format, changes the voxels, and gives them back with
``medscrub_put_volume``; the format plugin writes them in the input's own
format.  The core itself needs no array library: ``data`` is a numpy array
made by the format plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What a cleaner removed, in ``Volume.removed``: each format says it in its
# own markers (DICOM: CID 7050 codes and RecognizableVisualFeatures).
FEATURES = "recognizable-features"  # a face, a skull: what could be recognised
TEXT = "burned-in-text"


@dataclass
class Volume:
    """A 3D image in voxel order (i, j, k) with its orientation.

    ``affine`` is the 4x4 matrix from voxel indices to RAS+ millimetres (the
    NIfTI convention; a DICOM plugin converts from LPS).  ``modality`` is
    "MR", "CT" or "" when unknown, so a cleaner can pick its model.
    ``removed`` is set by the cleaner before it puts the volume back:
    :data:`FEATURES`, :data:`TEXT` or "" for other changes.
    """

    data: Any  # numpy.ndarray, shape (i, j, k)
    affine: Any  # numpy.ndarray, shape (4, 4)
    modality: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # format notes the writer needs back
    removed: str = ""
