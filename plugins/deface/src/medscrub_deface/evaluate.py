"""``medscrub deface evaluate``: the network against reference masks.

For every reference head of the data list, and views of ch2 stored
sagittally and on an oblique 1.2 mm grid and of the pydeface head tilted 25
degrees forward and turned 15 degrees to a side, in a fresh process so that
the peak memory is that volume's alone:

* face removed: the share of the reference face (the template face mask's
  wedge, head tissue only) that defacing sets to the background; and of a
  second face mask, made independently of the first and reaching higher:
  caideface's, carried to the head by registering caideface's MNI brain to
  the head's brain (when caideface is installed; the last training stage
  learnt both);
* ears removed: the share of the reference outer ears
  (:func:`labels.ear_reference`) that defacing with ``[deface] ears = true``
  removes;
* brain lost: the share of the reference brain that defacing removes, face
  and ears;
* skull-strip Dice against the reference brain;
* seconds of inference (network and full-resolution masks) and the peak
  resident memory of the process (Python, torch and the volume included).

The reference heads are the ones the network was trained on: these numbers
show that training and inference work, not how well the network does on
heads it has never seen.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import time
from pathlib import Path

import numpy as np

from .model import BRAIN


def _turn(axis: int, degrees: float) -> np.ndarray:
    """A rotation by ``degrees`` about the RAS axis ``axis`` (0 R, 1 A, 2 S)."""
    a = np.radians(degrees)
    i, j = [n for n in range(3) if n != axis]
    out = np.eye(3)
    out[i, i] = out[j, j] = np.cos(a)
    out[i, j], out[j, i] = -np.sin(a), np.sin(a)
    return out


def _on_grid(image: np.ndarray, affine: np.ndarray, masks: dict[str, np.ndarray], linear: np.ndarray, shape):
    """The head resampled onto a grid of ``shape`` whose voxel axes are the
    columns of ``linear`` (mm), centred where the input's grid is (masks by
    nearest neighbour); returns the image, that grid's affine and the masks."""
    import torch

    from .grid import sample

    centre = affine[:3, :3] @ ((np.asarray(image.shape) - 1) / 2) + affine[:3, 3]
    out = np.eye(4)
    out[:3, :3] = linear
    out[:3, 3] = centre - linear @ ((np.asarray(shape) - 1) / 2)
    img = sample(torch.from_numpy(image.astype(np.float32))[None], affine, out, shape)[0].numpy()
    warped = {k: sample(torch.from_numpy(v.astype(np.float32))[None], affine, out, shape, mode="nearest")[0].numpy() > 0.5
              for k, v in masks.items()}
    return img, out, warped


def _oblique(image: np.ndarray, affine: np.ndarray, masks: dict[str, np.ndarray]):
    """The head on a grid tilted 20 degrees about R and 10 about S, 1.2 mm
    voxels: an oblique acquisition."""
    return _on_grid(image, affine, masks, _turn(2, 10) @ _turn(0, 20) * 1.2, (160, 200, 180))


def _tilted(axis: int, degrees: float):
    """The head turned ``degrees`` about ``axis`` inside its own grid, stored
    with the input's affine: a head lying tilted against R, A and S."""
    def view(image: np.ndarray, affine: np.ndarray, masks: dict[str, np.ndarray]):
        img, _, warped = _on_grid(image, affine, masks, _turn(axis, degrees) @ affine[:3, :3], image.shape)
        return img, affine, warped
    return view


def _sagittal(image: np.ndarray, affine: np.ndarray, masks: dict[str, np.ndarray]):
    """The same voxels stored with the sagittal axis last and A flipped
    (lossless: a permutation and a flip, with the affine to match)."""
    perm = (1, 2, 0)
    img = np.transpose(image, perm)[::-1]
    a = affine[:, list(perm) + [3]]
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, img.shape[0] - 1
    a = a @ flip
    return np.ascontiguousarray(img), a, {k: np.ascontiguousarray(np.transpose(v, perm)[::-1]) for k, v in masks.items()}


def _one(args) -> dict:
    name, image, affine, refs, weights, pictures = args
    face_ref, brain_ref, ear_ref = refs["face"], refs["brain"], refs["ears"]
    second_face = refs.get("caideface-face")
    import torch

    torch.set_num_threads(2)
    from .segment import brain_region, ear_region, predict, removal_region

    predict(np.zeros((8, 8, 8), np.float32), np.eye(4), weights)  # load the network before timing
    start = time.perf_counter()
    masks = predict(image, affine, weights)
    removed = removal_region(masks, affine)
    brain = brain_region(masks)
    seconds = time.perf_counter() - start
    ears = ear_region(masks, affine)  # with [deface] ears = true
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    inter = float((brain & brain_ref).sum())
    row = {
        "volume": name, "shape": "x".join(str(n) for n in image.shape),
        "voxel_mm": "x".join(f"{s:.2g}" for s in np.sqrt((affine[:3, :3] ** 2).sum(0))),
        "face_removed_pct": _share(removed, face_ref),
        "caideface_face_removed_pct": _share(removed, second_face),
        "ears_removed_pct": _share(ears, ear_ref),
        "brain_lost_pct": round(100 * float(((removed | ears) & brain_ref).sum()) / max(1, brain_ref.sum()), 4),
        "skull_strip_dice": round(2 * inter / max(1.0, float(brain.sum() + brain_ref.sum())), 4),
        "seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb),
    }
    if pictures is not None:
        from .views import front, png, side_by_side, slices, to_ras, window

        fill = image.min()
        defaced = np.where(removed, fill, image)
        stripped = np.where(brain, image, fill)
        lo, hi = window(to_ras(image, affine)[0])
        ras_face = np.argwhere(to_ras(face_ref if face_ref.any() else brain_ref, affine)[0])
        centre = ras_face.mean(0) if len(ras_face) else None
        folder = Path(pictures)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [slices(v, affine, centre, lo, hi) for v in (image, defaced, stripped)]
        from PIL import Image

        sheet = Image.new("L", (max(r.width for r in rows), sum(r.height for r in rows) + 16))
        y = 0
        for r in rows:
            sheet.paste(r, (0, y))
            y += r.height + 8
        (folder / f"deface-{name}-slices.png").write_bytes(png(sheet))
        if face_ref.any():
            (folder / f"deface-{name}-front.png").write_bytes(png(side_by_side(front(image, affine), front(defaced, affine))))
        if ear_ref.any():
            from .views import sides

            (folder / f"deface-{name}-sides.png").write_bytes(png(side_by_side(*sides(image, np.where(removed | ears, fill, image), affine))))
    return row


# More views of a head: other storage orders and grids, and the head tilted
VIEWS = {
    "ch2": (("ch2-sagittal", _sagittal), ("ch2-oblique", _oblique)),
    "pydeface-head": (("pydeface-head-pitch25", _tilted(0, 25)), ("pydeface-head-yaw15", _tilted(2, 15))),
}


def _share(removed: np.ndarray, reference: np.ndarray | None) -> float | None:
    """The percentage of ``reference`` that ``removed`` covers (None without one)."""
    if reference is None or not reference.any():
        return None
    return round(100 * float((removed & reference).sum()) / float(reference.sum()), 2)


def cases(data: Path, cache: Path | None, echo=print):
    from . import labels

    heads = labels.heads(data, cache)
    for name, h in heads.items():
        refs = {"face": h.face_reference & (h.tissue > 0), "brain": h.target == BRAIN, "ears": labels.ear_reference(h)}
        if refs["face"].any():
            try:  # built with the label maps; registered here for a cache made before it was kept
                second = h.second_face if h.second_face is not None else labels.caideface_face(h, data)
                refs["caideface-face"] = second & (h.tissue > 0)
            except (ImportError, OSError, KeyError) as e:  # caideface not installed: that column stays empty
                echo(f"{name}: no caideface face reference ({e})")
        yield name, h.image, h.affine, refs
        for view, make in VIEWS.get(name, ()):
            img, aff, m = make(h.image, h.affine, refs)
            yield view, img, aff, m


def evaluate(data: Path, weights: Path | None, cache: Path | None, json_out: Path | None, pictures: Path | None,
             echo=print) -> list[dict]:
    rows = []
    ctx = mp.get_context("spawn")
    header = f"{'volume':<22}{'shape':>14}{'voxel mm':>14}{'face removed %':>16}{'(caideface) %':>15}" \
             f"{'ears removed %':>16}{'brain lost %':>14}" \
             f"{'strip Dice':>12}{'seconds':>9}{'peak MB':>9}"
    echo(header)
    for case in cases(data, cache, echo):
        with ctx.Pool(1) as pool:
            row = pool.apply(_one, ((*case, str(weights) if weights else None, str(pictures) if pictures else None),))
        rows.append(row)
        face, second, ears = ("-" if row[k] is None else f"{row[k]:.1f}"
                              for k in ("face_removed_pct", "caideface_face_removed_pct", "ears_removed_pct"))
        echo(f"{row['volume']:<22}{row['shape']:>14}{row['voxel_mm']:>14}{face:>16}{second:>15}{ears:>16}"
             f"{row['brain_lost_pct']:>14.3f}"
             f"{row['skull_strip_dice']:>12.3f}{row['seconds']:>9.2f}{row['peak_rss_mb']:>9}")
    if json_out is not None:
        json_out.write_text(json.dumps(rows, indent=1))
    return rows
