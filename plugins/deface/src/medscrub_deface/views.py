"""Pictures: three orthogonal slices, and the skin surface seen from the front
or the sides."""

from __future__ import annotations

import io

import nibabel as nib
import numpy as np
from PIL import Image

PANEL = 256  # pixels high per panel
# Front views: a surface this far behind the nearest one is drawn darkest.
# About the depth of a face from the nose tip to the cheekbones.
FADE_MM = 40.0


def to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The voxels reordered (axes swapped and flipped, never resampled) to
    the nearest RAS order, and the voxel sizes in that order."""
    ornt = nib.orientations.io_orientation(np.asarray(affine))
    ras = nib.orientations.apply_orientation(data, ornt)
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))[np.argsort(ornt[:, 0])]
    return ras, zooms


def window(data: np.ndarray) -> tuple[float, float]:
    sample = data[:: max(1, data.shape[0] // 64), :: max(1, data.shape[1] // 64)]
    lo, hi = (float(x) for x in np.percentile(sample, (0.5, 99.5)))
    return lo, hi if hi > lo else lo + 1


def _grey(slice2d: np.ndarray, lo: float, hi: float, aspect: float) -> Image.Image:
    img = Image.fromarray((np.clip((slice2d - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8))
    w = max(1, int(round(PANEL * aspect * slice2d.shape[1] / slice2d.shape[0])))
    return img.resize((w, PANEL), Image.BILINEAR)


def slices(data: np.ndarray, affine: np.ndarray, centre_vox: np.ndarray | None = None,
           lo: float | None = None, hi: float | None = None) -> Image.Image:
    """Sagittal (face to the right), coronal and axial slices through
    ``centre_vox`` (in RAS voxel order), side by side."""
    ras, z = to_ras(np.asarray(data, dtype=np.float32), affine)
    if lo is None or hi is None:
        lo, hi = window(ras)
    c = (np.asarray(ras.shape) // 2) if centre_vox is None else np.clip(np.asarray(centre_vox, int), 0,
                                                                         np.asarray(ras.shape) - 1)
    sag = np.flipud(ras[c[0]].T)  # rows: S down to I, columns: P to A
    cor = np.flipud(ras[:, c[1]].T)  # columns: R... as stored (left of picture = patient's left)
    axi = np.flipud(ras[:, :, c[2]].T)
    panels = [_grey(sag, lo, hi, z[1] / z[2]), _grey(cor, lo, hi, z[0] / z[2]), _grey(axi, lo, hi, z[0] / z[1])]
    out = Image.new("L", (sum(p.width for p in panels) + 8 * (len(panels) - 1), PANEL))
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 8
    return out


def surface_threshold(ras: np.ndarray) -> float:
    """The level that separates the head from the air: half Otsu's threshold
    on a coarse copy (low enough to catch thin skin)."""
    from .grid import otsu

    return 0.5 * otsu(ras[::2, ::2, ::2].ravel())


def front(data: np.ndarray, affine: np.ndarray, threshold: float | None = None, near: float | None = None,
          fade_mm: float = 0.0) -> Image.Image:
    """A front-facing 3D rendering: the skin surface seen from in front of
    the face (rays from anterior to posterior), shaded by its slope.

    With ``fade_mm`` a surface is also darker the deeper it lies: at
    ``fade_mm`` behind ``near`` (the depth in mm of the nearest surface,
    default this volume's own) it has a fifth of its brightness.  A removed
    face then shows as a dark hollow, not as a lit cut surface.  Pass the
    "before" volume's ``threshold`` and ``near`` to draw "after" alike.
    """
    ras, z = to_ras(np.asarray(data, dtype=np.float32), affine)
    if threshold is None:
        threshold = surface_threshold(ras)
    hit = ras > threshold
    ny = ras.shape[1]
    rev = hit[:, ::-1, :]  # from the front
    first = np.where(rev.any(1), rev.argmax(1), ny).astype(np.float32)  # (x, z) depth in voxels
    depth = first * z[1]
    gx, gz = np.gradient(depth, z[0], z[2])
    shade = 1.0 / np.sqrt(1 + gx**2 + gz**2)
    found = first < ny
    shade = np.where(found, 0.15 + 0.85 * shade, 0.0)
    if fade_mm > 0 and found.any():
        nearest = float(depth[found].min()) if near is None else near
        shade *= 1.0 - 0.8 * np.clip((depth - nearest) / fade_mm, 0.0, 1.0)
    picture = np.flipud(shade.T)  # rows: S to I; columns: patient's R to L as seen from the front... flipped below
    picture = picture[:, ::-1]  # viewer faces the patient: patient's right on the picture's left
    img = Image.fromarray((picture * 255).astype(np.uint8))
    w = max(1, int(round(PANEL * (z[0] / z[2]) * picture.shape[1] / picture.shape[0])))
    return img.resize((w, PANEL), Image.BILINEAR)


def nearest_surface(data: np.ndarray, affine: np.ndarray, threshold: float) -> float | None:
    """Depth in mm, from the front of the grid, of the surface point nearest
    the viewer of :func:`front`; None when nothing is above ``threshold``."""
    ras, z = to_ras(np.asarray(data, dtype=np.float32), affine)
    rows = np.flatnonzero((ras > threshold).any(axis=(0, 2)))
    return None if not len(rows) else float(ras.shape[1] - 1 - rows[-1]) * float(z[1])


def fronts(before: np.ndarray, after: np.ndarray, affine: np.ndarray) -> tuple[Image.Image, Image.Image]:
    """:func:`front` of a volume before and after a cleaner, drawn alike
    (one threshold, depth faded from the nearest surface before)."""
    threshold = surface_threshold(to_ras(np.asarray(before, dtype=np.float32), affine)[0])
    near = nearest_surface(before, affine, threshold)
    return tuple(front(v, affine, threshold, near, FADE_MM) for v in (before, after))


# A quarter turn about S: the patient's right faces the viewer of :func:`front`.
RIGHT_TO_FRONT = np.array([[0.0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def sides(before: np.ndarray, after: np.ndarray, affine: np.ndarray) -> tuple[Image.Image, Image.Image]:
    """The head seen from its right and its left, before and after: :func:`fronts`
    of the volume turned a quarter each way about the S axis."""
    affine = np.asarray(affine, dtype=float)
    right = fronts(before, after, RIGHT_TO_FRONT @ affine)
    left = fronts(before, after, np.linalg.inv(RIGHT_TO_FRONT) @ affine)
    return side_by_side(right[0], left[0]), side_by_side(right[1], left[1])


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def side_by_side(*images: Image.Image) -> Image.Image:
    out = Image.new("L", (sum(i.width for i in images) + 8 * (len(images) - 1), max(i.height for i in images)))
    x = 0
    for i in images:
        out.paste(i, (x, 0))
        x += i.width + 8
    return out
