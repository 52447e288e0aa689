"""Where to look and at what scale: the strategy round a detection engine.

A frame is looked at in passes (docs/ocr.md):

1. the borders at full scale, with the centre masked out: devices put names,
   dates and IDs round the image, and the speckle of the anatomy is kept
   out of the detector's view;
2. the rest, the centre (with an overlap), at ``center_scale``;
3. the whole frame at each of the coarser ``scales``, for characters too
   large for the network's view at full scale.

Boxes from every pass are mapped to the frame, grown by ``dilation`` pixels
and merged.  Cine loops are looked at once where they do not change
(:func:`find_in_frames`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .engines import Box, Engine


@dataclass(frozen=True)
class Strategy:
    center_mask: float = 0.5  # share of width and height that is the centre; 0: one pass over the frame
    center_scale: float = 1.0
    scales: tuple[float, ...] = (0.4,)
    dilation: int = 3  # pixels added round every box
    overlap: int = 24  # pixels by which the border bands and the centre overlap
    min_side: int = 8  # passes on images smaller than this are skipped


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def _run(engine: Engine, rgb: np.ndarray, x: int, y: int, scale: float, minimum: int) -> list[Box]:
    h, w = rgb.shape[:2]
    if min(h, w) * scale < minimum:
        return []
    boxes = engine.detect(_resize(rgb, scale))
    s = 1.0 / scale
    return [(x + int(b[0] * s), y + int(b[1] * s), x + int(np.ceil(b[2] * s)), y + int(np.ceil(b[3] * s)))
            for b in boxes]


def regions(width: int, height: int, strategy: Strategy) -> tuple[list[Box], Box | None]:
    """The border bands and the centre rectangle (None: no centre mask)."""
    f = strategy.center_mask
    if f <= 0 or f >= 1:
        return [(0, 0, width, height)], None
    cx0, cy0 = round(width * (1 - f) / 2), round(height * (1 - f) / 2)
    cx1, cy1 = width - cx0, height - cy0
    m = strategy.overlap
    bands = [
        (0, 0, width, min(height, cy0 + m)),
        (0, max(0, cy1 - m), width, height),
        (0, max(0, cy0 - m), min(width, cx0 + m), min(height, cy1 + m)),
        (max(0, cx1 - m), max(0, cy0 - m), width, min(height, cy1 + m)),
    ]
    centre = (max(0, cx0 - m), max(0, cy0 - m), min(width, cx1 + m), min(height, cy1 + m))
    return bands, centre


def find_text(rgb: np.ndarray, engine: Engine, strategy: Strategy, area: Box | None = None) -> list[Box]:
    """Text boxes in one 8-bit RGB frame, dilated and clipped to it.

    ``area`` limits the search to a rectangle (the part of a cine frame that
    changed); the strategy is then applied to that rectangle."""
    h, w = rgb.shape[:2]
    ox, oy = 0, 0
    if area is not None:
        ox, oy, x1, y1 = area
        rgb = rgb[oy:y1, ox:x1]
    ah, aw = rgb.shape[:2]
    fine: list[Box] = []
    bands, centre = regions(aw, ah, strategy)
    if area is not None and min(ah, aw) < 200:  # a small changed part: one pass
        bands, centre = [(0, 0, aw, ah)], None
    for x0, y0, x1, y1 in bands:
        fine += _run(engine, rgb[y0:y1, x0:x1], x0, y0, 1.0, strategy.min_side)
    if centre is not None:
        x0, y0, x1, y1 = centre
        fine += _run(engine, rgb[y0:y1, x0:x1], x0, y0, strategy.center_scale, strategy.min_side)
    fine = [t for b in fine for t in tighten(rgb, b)]
    found = list(fine)
    coarse = [t for s in strategy.scales if s != 1.0 for b in _run(engine, rgb, 0, 0, s, strategy.min_side)
              for t in tighten(rgb, b)]
    if coarse:
        # a coarse pass is for what the fine passes missed: its boxes are
        # looser, so where fine boxes explain one it is left out
        seen = mask_of(fine, ah, aw)
        found += [b for b in coarse if seen[b[1]:b[3], b[0]:b[2]].mean() < 0.7]
    d = strategy.dilation
    return merge([(max(0, ox + b[0] - d), max(0, oy + b[1] - d), min(w, ox + b[2] + d), min(h, oy + b[3] + d))
                  for b in found])


def tighten(rgb: np.ndarray, box: Box, gap: int = 2) -> list[Box]:
    """A detector's box shrunk to the lines of ink in it.

    Ink is what differs from the median of a ring round the box by more than
    the ring's own spread; rows without ink split the box into lines.  A box
    whose ink cannot be told from its surroundings (text on speckle) is kept
    whole: the detector saw text there."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return [box]
    r = 3
    outer = rgb[max(0, y0 - r):min(h, y1 + r), max(0, x0 - r):min(w, x1 + r)].astype(np.int16)
    ring_mask = np.ones(outer.shape[:2], bool)
    iy, ix = y0 - max(0, y0 - r), x0 - max(0, x0 - r)
    ring_mask[iy:iy + (y1 - y0), ix:ix + (x1 - x0)] = False
    if ring_mask.sum() < 8:
        return [box]
    ring = outer[ring_mask]
    background = np.median(ring, axis=0)
    spread = np.median(np.abs(ring - background), axis=0)
    deviation = np.abs(ring - background).max(axis=1)
    limit = max(32.0, float(np.percentile(deviation, 99.5)), 4 * float(spread.max()))
    ink = (np.abs(rgb[y0:y1, x0:x1].astype(np.int16) - background) > limit).any(axis=2)
    if ink.sum() < 4 or ink.mean() > 0.6:
        return [box]
    # a row of ink has two ink pixels at least: a lone bright speck is noise
    rows = np.flatnonzero(ink.sum(axis=1) >= 2)
    if rows.size == 0:
        return [box]
    lines, start = [], int(rows[0])
    for a, b in zip(rows[:-1], rows[1:], strict=True):
        if b - a > gap + 1:
            lines.append((start, a))
            start = b
    lines.append((start, rows[-1]))
    out = []
    for top, bottom in lines:
        cols = np.flatnonzero(ink[top:bottom + 1].any(axis=0))
        out.append((x0 + int(cols[0]), y0 + int(top), x0 + int(cols[-1]) + 1, y0 + int(bottom) + 1))
    return out


def merge(boxes: Sequence[Box]) -> list[Box]:
    """Boxes without duplicates and without those inside another box;
    sorted top to bottom, left to right.  Overlapping boxes are kept apart:
    their bounding box would paint what neither covers."""
    unique = sorted(set(tuple(b) for b in boxes), key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    kept: list[Box] = []
    for b in unique:
        if not any(k[0] <= b[0] and k[1] <= b[1] and b[2] <= k[2] and b[3] <= k[3] for k in kept):
            kept.append(b)
    return sorted(kept, key=lambda b: (b[1], b[0], b[2], b[3]))


def mask_of(boxes: Sequence[Box], height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def changed_areas(frame: np.ndarray, reference: np.ndarray, ignore: np.ndarray, tolerance: int,
                  margin: int) -> list[Box]:
    """Rectangles round what differs between a frame and the reference
    outside ``ignore``: specks (lossy compression noise) are dropped, the
    rest grown by ``margin`` and taken as connected parts."""
    diff = cv2.absdiff(frame, reference)
    if diff.ndim == 3:
        diff = diff.max(axis=2)
    moved = ((diff > tolerance) & ~ignore).astype(np.uint8)
    moved = cv2.morphologyEx(moved, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    if not moved.any():
        return []
    moved = cv2.dilate(moved, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(moved, connectivity=8)
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:n]]


def find_in_frames(
    count: int, frame: Callable[[int], np.ndarray], engine: Engine, strategy: Strategy, tolerance: int = 8,
) -> tuple[list[list[Box]], int]:
    """Boxes for every frame of a cine loop, and how many frames were looked at in full.

    The first frame is looked at in full; its boxes hold for every frame
    (a static overlay is found once).  Every other frame is compared with
    the first: where nothing changed outside those boxes it has no new text;
    where something changed, those parts (with a margin) are searched again
    at full scale, so text that appears, moves or counts up is found in the
    frame that shows it.
    """
    first = frame(0)
    h, w = first.shape[:2]
    static = find_text(first, engine, strategy)
    ignore = mask_of(static, h, w)
    result = [static]
    full = 1
    per_frame = Strategy(strategy.center_mask, strategy.center_scale, (), strategy.dilation, strategy.overlap,
                         strategy.min_side)
    for i in range(1, count):
        current = frame(i)
        areas = changed_areas(current, first, ignore, tolerance, strategy.overlap)
        if sum((a[2] - a[0]) * (a[3] - a[1]) for a in areas) > 0.8 * h * w:
            areas = [(0, 0, w, h)]
            full += 1
        found = [b for area in areas for b in find_text(current, engine, per_frame, area)]
        result.append(merge(static + found) if found else static)
    return result, full
