"""The volume hand-off for DICOM: a series of slices, or one enhanced
multi-frame object, as one 3D volume for the pixel cleaners.

Grouping: when a cleaner of the run works on volumes, ``group_key`` makes
the single-frame images of one series one item: same SeriesInstanceUID,
frame of reference, matrix and orientation (a localizer in three planes
becomes three items).  A multi-frame object is a volume on its own.

Geometry: frames are sorted by their position along the normal of their
orientation.  Voxel (i, j, k) is column i, row j of the k-th frame; the
affine's third column is the step between neighbouring positions, so a
tilted CT gantry's shear is kept.  The affine is turned from DICOM's LPS
into the RAS+ of :class:`medscrub.volume.Volume`.  A volume needs at least
two frames, one orientation and spacing, one frame per position (no echoes,
phases or times stacked at the same place) and even steps (no missing
slice); otherwise the cleaner is told why, and the item is not written.

Values: the stored values with each frame's rescale slope and intercept
applied (Hounsfield units for CT), as float32 when any frame is rescaled,
else in the stored type.  ``put_volume`` turns them back into stored values
(rounded, clipped to BitsStored) and rewrites only the frames that changed
(see :mod:`.pixels` for the transfer syntax), updates the smallest and
largest pixel values where given, and sets the markers of what the cleaner
removed: RecognizableVisualFeatures NO and CID 7050 code 113102 (Clean
Recognizable Visual Features) for a face or skull, 113101 (Clean Pixel Data)
for burned-in text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError

from medscrub import Item, MedscrubError
from medscrub.volume import FEATURES, TEXT, Volume

from .markers import mark_clean_pixel_data, mark_clean_recognizable_visual_features
from .pixels import decode, has_pixels, store

CLEANER = "volume cleaner"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
ORIENTATION_TOLERANCE = 1e-3  # direction cosines
SPACING_TOLERANCE = 1e-3  # mm
STEP_TOLERANCE = 0.05  # of the mean step: more is a gap or a second stack
_GROUP_TAGS = (0x00080016, 0x00200052, 0x0020000E, 0x00200037, 0x00280008, 0x00280010, 0x00280011)


@dataclass
class DicomSeries:
    """``asset.data`` of a grouped item: the datasets of one series, in the
    item's member order, with their input ids and paths."""

    datasets: list[Dataset]
    ids: list[str]
    paths: list[Path]
    meta: dict = field(default_factory=dict)


def datasets_of(data) -> list[Dataset]:
    """Every dataset of a DICOM asset's data: a series or one dataset."""
    return data.datasets if isinstance(data, DicomSeries) else [data]


# -- grouping ----------------------------------------------------------------


def group_key(item: Item) -> str | None:
    """The series key of a single-frame image file, or None to keep it alone."""
    try:
        ds = dcmread(item.path, stop_before_pixels=True, force=True, specific_tags=list(_GROUP_TAGS))
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
        return None  # read fails again in the worker, with its reason
    series = str(ds.get("SeriesInstanceUID", "") or "").strip()
    if not series or int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return None
    orientation = ds.get("ImageOrientationPatient")
    if not orientation or len(orientation) != 6:
        return None
    rounded = ",".join(f"{float(v):.3f}" for v in orientation)
    return "|".join(("dicom-series", str(ds.get("SOPClassUID", "")), series, str(ds.get("FrameOfReferenceUID", "")),
                     f"{ds.get('Rows', '')}x{ds.get('Columns', '')}", rounded))


# -- geometry ----------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    dataset: int  # index into the datasets
    frame: int | None  # index into a multi-frame object's frames, None for a single frame
    position: np.ndarray  # LPS mm of the first voxel
    orientation: np.ndarray  # row and column direction cosines
    spacing: tuple[float, float]  # between rows, between columns
    slope: float
    intercept: float


def _number(value, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _vector(value, size: int, what: str) -> np.ndarray:
    if value is None or len(value) != size:
        raise MedscrubError(f"{CLEANER}: no {what} in an image of the series; cannot place it in a volume")
    try:
        return np.array([float(v) for v in value])
    except (TypeError, ValueError):
        raise MedscrubError(f"{CLEANER}: unreadable {what}: cannot place an image in a volume") from None


def _functional(ds: Dataset, index: int, sequence: str, keyword: str):
    """An attribute of a frame from its per-frame functional group, or else
    from the shared one."""
    for groups, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        if items is None or len(items) <= i:
            continue
        inner = items[i].get(sequence)
        if inner and keyword in inner[0]:
            return inner[0].get(keyword)
    return None


def frames_of(datasets: list[Dataset]) -> list[Frame]:
    frames = []
    for d, ds in enumerate(datasets):
        if not has_pixels(ds):
            raise MedscrubError(f"{CLEANER}: an object of the series has no pixel data")
        if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            raise MedscrubError(f"{CLEANER}: colour images are not volumes; not written")
        count = int(ds.get("NumberOfFrames", 1) or 1)
        if count == 1 and "PerFrameFunctionalGroupsSequence" not in ds:
            frames.append(Frame(
                d, None, _vector(ds.get("ImagePositionPatient"), 3, "ImagePositionPatient"),
                _vector(ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient"),
                tuple(_vector(ds.get("PixelSpacing"), 2, "PixelSpacing")),
                _number(ds.get("RescaleSlope"), 1.0), _number(ds.get("RescaleIntercept"), 0.0)))
            continue
        if "PerFrameFunctionalGroupsSequence" not in ds:
            raise MedscrubError(f"{CLEANER}: a multi-frame object without per-frame positions is not a volume")
        for f in range(count):
            frames.append(Frame(
                d, f,
                _vector(_functional(ds, f, "PlanePositionSequence", "ImagePositionPatient"), 3,
                        "ImagePositionPatient"),
                _vector(_functional(ds, f, "PlaneOrientationSequence", "ImageOrientationPatient"), 6,
                        "ImageOrientationPatient"),
                tuple(_vector(_functional(ds, f, "PixelMeasuresSequence", "PixelSpacing"), 2, "PixelSpacing")),
                _number(_functional(ds, f, "PixelValueTransformationSequence", "RescaleSlope"), 1.0),
                _number(_functional(ds, f, "PixelValueTransformationSequence", "RescaleIntercept"), 0.0)))
    return frames


def arrange(datasets: list[Dataset]) -> tuple[list[Frame], np.ndarray]:
    """The frames in volume order and the voxel-to-LPS affine."""
    frames = frames_of(datasets)
    if len(frames) < 2:
        raise MedscrubError(f"{CLEANER}: a single 2D image, not a volume; not written")
    shapes = {(int(datasets[f.dataset].Rows), int(datasets[f.dataset].Columns)) for f in frames}
    if len(shapes) > 1:
        raise MedscrubError(f"{CLEANER}: images of different sizes in one series; not a volume")
    first = frames[0]
    for f in frames[1:]:
        if not np.allclose(f.orientation, first.orientation, atol=ORIENTATION_TOLERANCE):
            raise MedscrubError(f"{CLEANER}: images of several orientations in one series; not a volume")
        if not np.allclose(f.spacing, first.spacing, atol=SPACING_TOLERANCE):
            raise MedscrubError(f"{CLEANER}: images of different pixel spacing in one series; not a volume")
    row, column = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row, column)
    frames.sort(key=lambda f: float(f.position @ normal))
    distances = np.diff([float(f.position @ normal) for f in frames])
    if distances.min() <= SPACING_TOLERANCE:
        raise MedscrubError(f"{CLEANER}: several images at one position (echoes, phases or times in one series); "
                            "a volume needs one image per position")
    step = (frames[-1].position - frames[0].position) / (len(frames) - 1)
    gaps = np.linalg.norm(np.diff([f.position for f in frames], axis=0) - step, axis=1)
    if gaps.max() > STEP_TOLERANCE * np.linalg.norm(step):
        raise MedscrubError(f"{CLEANER}: uneven steps between images (a missing slice?); not a volume")
    affine = np.eye(4)
    affine[:3, 0] = row * first.spacing[1]
    affine[:3, 1] = column * first.spacing[0]
    affine[:3, 2] = step
    affine[:3, 3] = frames[0].position  # the first after sorting
    return frames, affine


# -- the hooks' work ----------------------------------------------------------


def _stored(ds: Dataset, cache: dict) -> np.ndarray:
    """A dataset's decoded values, (frames, rows, columns), decoded once."""
    key = id(ds)
    if key not in cache:
        values = decode(ds, CLEANER)
        cache[key] = values[None] if values.ndim == 2 else values
    return cache[key]


def _rescaled(frames: list[Frame]) -> bool:
    return any(f.slope != 1.0 or f.intercept != 0.0 for f in frames)


def get_volume(data) -> Volume:
    datasets = datasets_of(data)
    frames, lps = arrange(datasets)
    cache: dict = {}
    planes = [_stored(datasets[f.dataset], cache)[f.frame or 0] for f in frames]
    stack = np.stack(planes, axis=-1)  # (rows, columns, frames)
    if _rescaled(frames):
        stack = stack.astype(np.float32)
        for k, f in enumerate(frames):
            stack[:, :, k] = stack[:, :, k] * np.float32(f.slope) + np.float32(f.intercept)
    modality = str(datasets[0].get("Modality", "") or "").strip().upper()
    return Volume(data=np.ascontiguousarray(stack.transpose(1, 0, 2)), affine=LPS_TO_RAS @ lps, modality=modality,
                  meta={"format": "dicom", "frames": len(frames)})


def _limits(ds: Dataset, dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    bits = int(ds.get("BitsStored", info.bits) or info.bits)
    if info.min < 0:
        return max(info.min, -(1 << (bits - 1))), min(info.max, (1 << (bits - 1)) - 1)
    return 0, min(info.max, (1 << bits) - 1)


def put_volume(data, volume: Volume) -> int:
    """Put cleaned voxels back; the number of objects whose pixels changed."""
    datasets = datasets_of(data)
    frames, lps = arrange(datasets)
    voxels = np.asarray(volume.data)
    rows, columns = int(datasets[frames[0].dataset].Rows), int(datasets[frames[0].dataset].Columns)
    if voxels.shape != (columns, rows, len(frames)):
        raise MedscrubError(f"the cleaned volume has shape {voxels.shape}, the series {(columns, rows, len(frames))}")
    if not np.allclose(np.asarray(volume.affine, dtype=float), LPS_TO_RAS @ lps, atol=1e-4):
        raise MedscrubError("the cleaned volume has another affine than the series; volumes go back in place")
    cache: dict = {}
    changed: dict[int, np.ndarray] = {}
    for k, f in enumerate(frames):
        ds = datasets[f.dataset]
        original = _stored(ds, cache)
        low, high = _limits(ds, original.dtype)
        values = voxels[:, :, k].T
        if f.slope != 1.0 or f.intercept != 0.0:
            values = (values.astype(np.float64) - f.intercept) / f.slope
        values = np.clip(np.rint(values) if values.dtype.kind == "f" else values, low, high).astype(original.dtype)
        plane = f.frame or 0
        if np.array_equal(values, original[plane]):
            continue
        if f.dataset not in changed:
            changed[f.dataset] = np.array(original, copy=True)
        changed[f.dataset][plane] = values
    for d, array in changed.items():
        ds = datasets[d]
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").strip()
        store(ds, array if len(array) > 1 else array[0], photometric, CLEANER)
        for tag, value in ((0x00280106, array.min()), (0x00280107, array.max())):  # Smallest/LargestImagePixelValue
            if tag in ds:
                ds[tag].value = int(value)
        if volume.removed == FEATURES:
            ds.RecognizableVisualFeatures = "NO"
            mark_clean_recognizable_visual_features(ds)
        elif volume.removed == TEXT:
            mark_clean_pixel_data(ds)
    return len(changed)
