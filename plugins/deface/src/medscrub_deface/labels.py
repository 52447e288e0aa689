"""Label maps of heads, built from images that ship in packages.

Only training and evaluation use this module.  The sources are listed in
``plugins/deface/training/data.toml`` with their package and licence; none of
their files is copied into medscrub-deface.  Each head becomes two label
maps on its own RAS grid:

* ``tissue``: the classes the image synthesiser paints with random
  intensities: 0 air, 1-3 tissue outside the brain (dark, middle, bright in
  the source T1), 4-6 brain (dark, middle, bright: CSF, grey, white matter);
* ``target``: what the network learns: 0 background, 1 head, 2 face, 3 brain.

Face labels come from the pydeface template's face mask, carried to each
head by an affine registration (SimpleITK, Mattes mutual information).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from .grid import otsu
from .model import BACKGROUND, BRAIN, FACE, HEAD

FACE_REACH_MM = 4.0  # the face label reaches this far into the air in front of the skin


@dataclass
class Head:
    name: str
    tissue: np.ndarray  # uint8, see module docstring
    target: np.ndarray  # uint8
    affine: np.ndarray
    image: np.ndarray | None = None  # the source image, for evaluation
    face_reference: np.ndarray | None = None  # bool: the reference face region (mask's wedge, any tissue)
    wide_target: np.ndarray | None = None  # ``target`` with the face of both face masks (pydeface's, caideface's)
    second_face: np.ndarray | None = None  # bool: caideface's face region (any tissue), see caideface_face


def source_path(entry: dict) -> Path:
    """A file named in data.toml: an absolute path (a Debian package) or a
    path inside an installed Python package."""
    if "package" in entry:
        return Path(str(files(entry["package"]).joinpath(entry["file"])))
    return Path(entry["file"])


def read_data_list(path: Path) -> dict[str, dict]:
    return {entry["name"]: entry for entry in tomllib.loads(path.read_text())["source"]}


def load_ras(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.load(str(path)))
    return np.asanyarray(img.dataobj).astype(np.float32), np.asarray(img.affine, dtype=float)


def _classes(values: np.ndarray, k: int = 3, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """1D k-means; returns sorted centres and the class of each value (0..k-1)."""
    centres = np.percentile(values, np.linspace(100 / (2 * k), 100 - 100 / (2 * k), k))
    for _ in range(iterations):
        cls = np.abs(values[:, None] - centres[None]).argmin(1)
        centres = np.array([values[cls == i].mean() if np.any(cls == i) else centres[i] for i in range(k)])
    order = np.argsort(centres)
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    return centres[order], rank[np.abs(values[:, None] - centres[None]).argmin(1)]


def head_mask(image: np.ndarray) -> np.ndarray:
    """Everything inside the skin: Otsu's threshold, closed, holes filled,
    the largest connected part."""
    fg = image > 0.5 * otsu(image[image > 0])
    fg = ndimage.binary_closing(fg, ndimage.generate_binary_structure(3, 1), iterations=3)
    lab, n = ndimage.label(fg)
    if n > 1:
        sizes = ndimage.sum(fg, lab, range(1, n + 1))
        fg = lab == (1 + int(np.argmax(sizes)))
    for axis in range(3):  # fill cavities slice by slice too (mouth, sinuses open to the air in 3D)
        fg = np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(fg, axis, 0)], axis)
    return ndimage.binary_fill_holes(fg)


def tissue_map(image: np.ndarray, head: np.ndarray, brain: np.ndarray) -> np.ndarray:
    tissue = np.zeros(image.shape, dtype=np.uint8)
    other = head & ~brain
    if other.any():
        _, cls = _classes(image[other])
        tissue[other] = 1 + cls
    if brain.any():
        _, cls = _classes(image[brain])
        tissue[brain] = 4 + cls
    return tissue


def target_map(head: np.ndarray, brain: np.ndarray, face_region: np.ndarray, spacing: float) -> np.ndarray:
    target = np.zeros(head.shape, dtype=np.uint8)
    target[head] = HEAD
    reach = max(1, int(round(FACE_REACH_MM / spacing)))
    near = ndimage.binary_dilation(head, iterations=reach)
    target[near & face_region] = FACE
    target[brain] = BRAIN  # the brain is never face
    return target


# --- registration -----------------------------------------------------------


def _sitk(image: np.ndarray, affine: np.ndarray):
    """A SimpleITK image (LPS physical space) of a RAS array."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(image, (2, 1, 0)), dtype=np.float32))
    lps = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :3]
    spacing = np.sqrt((lps**2).sum(0))
    img.SetSpacing([float(s) for s in spacing])
    img.SetDirection([float(x) for x in (lps / spacing).flatten()])
    img.SetOrigin([float(x) for x in np.diag([-1.0, -1.0, 1.0]) @ affine[:3, 3]])
    return img


def register_affine(fixed: np.ndarray, fixed_affine: np.ndarray, moving: np.ndarray, moving_affine: np.ndarray,
                    seed: int = 0):
    """The affine transform (SimpleITK) that maps fixed physical points onto moving ones."""
    import SimpleITK as sitk

    f = _sitk(fixed, fixed_affine)
    m = _sitk(moving, moving_affine)
    initial = sitk.CenteredTransformInitializer(f, m, sitk.AffineTransform(3),
                                                sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.05, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, 300, relaxationFactor=0.6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.5])
    reg.SetInitialTransform(initial, inPlace=False)
    return reg.Execute(f, m)


def warp(moving: np.ndarray, moving_affine: np.ndarray, transform, fixed_shape, fixed_affine,
         nearest: bool = False) -> np.ndarray:
    import SimpleITK as sitk

    ref = _sitk(np.zeros(fixed_shape, dtype=np.float32), fixed_affine)
    out = sitk.Resample(_sitk(moving, moving_affine), ref, transform,
                        sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear, 0.0)
    return np.transpose(sitk.GetArrayFromImage(out), (2, 1, 0))


# --- the heads --------------------------------------------------------------


def build(data_list: Path, seed: int = 0) -> dict[str, Head]:
    """Every head of the data list, with its label maps."""
    sources = read_data_list(data_list)
    path = {name: source_path(entry) for name, entry in sources.items()}

    ch2, ch2_aff = load_ras(path["ch2"])
    ch2_brain = load_ras(path["ch2bet"])[0] > 0
    pd_head, pd_aff = load_ras(path["pydeface-head"])
    pd_face = load_ras(path["pydeface-facemask"])[0] < 0.5  # the mask is 0 on the face

    # ch2 -> pydeface head, one affine: carries the face mask to ch2 and the brain to the mean head.
    t = register_affine(pd_head, pd_aff, ch2, ch2_aff, seed)
    ch2_face = warp(pd_face.astype(np.float32), pd_aff, t.GetInverse(), ch2.shape, ch2_aff) > 0.5
    pd_brain = warp(ch2_brain.astype(np.float32), ch2_aff, t, pd_head.shape, pd_aff) > 0.5

    heads = {}
    for name, image, affine, brain, face in (("ch2", ch2, ch2_aff, ch2_brain, ch2_face),
                                             ("pydeface-head", pd_head, pd_aff, pd_brain, pd_face)):
        head = head_mask(image) | brain
        spacing = float(np.sqrt((affine[:3, :3] ** 2).sum(0)).mean())
        h = Head(name, tissue_map(image, head, brain), target_map(head, brain, face, spacing), affine, image, face)
        # caideface's mask reaches higher (the eyes and the bridge of the nose): the wide face has both
        h.second_face = caideface_face(h, data_list, seed)
        h.wide_target = target_map(head, brain, face | h.second_face, spacing)
        heads[name] = h

    mni, mni_aff = load_ras(path["mni152-t1"])
    gm = load_ras(path["mni152-gm"])[0]
    wm = load_ras(path["mni152-wm"])[0]
    brain = mni > 0
    tissue = np.zeros(mni.shape, dtype=np.uint8)
    tissue[brain] = 4 + np.argmax(np.stack([np.maximum(0, 255 - gm - wm), gm, wm]), 0)[brain]
    target = np.where(brain, BRAIN, BACKGROUND).astype(np.uint8)
    heads["mni152-brain"] = Head("mni152-brain", tissue, target, mni_aff, mni, np.zeros(mni.shape, dtype=bool))
    return heads


def caideface_face(head: Head, data_list: Path, seed: int = 0) -> np.ndarray:
    """caideface's own face mask carried to a head through its MNI brain
    (registered to the head's brain): a second face mask, made
    independently of pydeface's; it reaches higher, over the eyes."""
    sources = read_data_list(data_list)
    brain_t1, brain_aff = load_ras(source_path(sources["caideface-brain"]))
    face = load_ras(source_path(sources["caideface-facemask"]))[0] < 0.5
    head_brain = np.where(head.target == BRAIN, head.image, 0).astype(np.float32)
    t = register_affine(head_brain, head.affine, brain_t1, brain_aff, seed)
    return warp(face.astype(np.float32), brain_aff, t, head.target.shape, head.affine) > 0.5


def ear_reference(head: Head, radius_mm: float = 7.0, min_ml: float = 0.05) -> np.ndarray:
    """A reference for the outer ears, for evaluation, found from the image
    alone (not from the brain the defacer places the ears by): the parts of
    the head mask narrower than ``2 * radius_mm`` (what an opening by a ball
    of that radius takes away) in pieces of at least ``min_ml`` that lie in
    the outer fifths of the head's width and are centred in the middle two
    fifths of its length, where ears are (so not the nose, nor a cheek or
    the neck cut by the field of view)."""
    spacing = np.sqrt((head.affine[:3, :3] ** 2).sum(0))
    mask = head_mask(head.image)
    core = ndimage.distance_transform_edt(mask, sampling=spacing) > radius_mm
    opened = ndimage.distance_transform_edt(~core, sampling=spacing) <= radius_mm
    ijk = np.argwhere(mask)
    ras = ijk @ head.affine[:3, :3].T + head.affine[:3, 3]
    lo, hi = ras.min(0), ras.max(0)
    middle, size = (lo + hi) / 2, hi - lo
    parts, n = ndimage.label(mask & ~opened)
    if not n:
        return np.zeros(mask.shape, dtype=bool)
    found = parts[tuple(ijk.T)]
    voxel_ml = float(np.prod(spacing)) / 1000
    keep = []
    for part in range(1, n + 1):
        where = ras[found == part]
        centre = where.mean(0)
        if (len(where) * voxel_ml >= min_ml and abs(centre[0] - middle[0]) > 0.3 * size[0]
                and abs(centre[1] - middle[1]) < 0.2 * size[1]):
            keep.append(part)
    return np.isin(parts, keep)


def save_cache(heads: dict[str, Head], path: Path) -> None:
    arrays = {}
    for name, h in heads.items():
        arrays[f"{name}/tissue"] = h.tissue
        arrays[f"{name}/target"] = h.target
        arrays[f"{name}/affine"] = h.affine
        arrays[f"{name}/image"] = h.image.astype(np.float32)
        arrays[f"{name}/face"] = h.face_reference
        for key in ("wide_target", "second_face"):
            if getattr(h, key) is not None:
                arrays[f"{name}/{key}"] = getattr(h, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_cache(path: Path) -> dict[str, Head]:
    z = np.load(path)
    names = sorted({k.split("/")[0] for k in z.files})
    def optional(key: str) -> np.ndarray | None:
        return z[key] if key in z.files else None

    return {n: Head(n, z[f"{n}/tissue"], z[f"{n}/target"], z[f"{n}/affine"], z[f"{n}/image"], z[f"{n}/face"],
                    optional(f"{n}/wide_target"), optional(f"{n}/second_face"))
            for n in names}


def heads(data_list: Path, cache: Path | None, seed: int = 0) -> dict[str, Head]:
    if cache is not None and cache.exists():
        return load_cache(cache)
    built = build(data_list, seed)
    if cache is not None:
        save_cache(built, cache)
    return built
