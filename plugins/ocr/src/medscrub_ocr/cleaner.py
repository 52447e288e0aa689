"""The ``erase-text`` cleaner: find burned-in text, paint it over, report it."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medscrub import Asset, Change, Preview

from .detect import find_in_frames, merge
from .engines import Box, Engine, get_engine
from .fill import fill
from .image import FORMAT as IMAGE
from .options import OcrOptions
from .regions import Device, RegionRule, boxes_for, load_rules
from .views import as_rgb, boxes_text, png, to_uint8

NAME = "erase-text"
HELP = "find text burned into pixels (DICOM, PNG, JPEG, TIFF) with an OCR detector and paint it over"

_rules: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def options_of(context) -> OcrOptions:
    options = context.options("ocr") if context is not None else None
    options = options if isinstance(options, OcrOptions) else OcrOptions()
    if options.threads == 0:  # this worker's share of the machine
        options = options.model_copy(update={"threads": getattr(context, "cores", 0) or 1})
    return options


def rules_of(context, options: OcrOptions) -> list[RegionRule]:
    """The packaged rules, then the site's, loaded once per run context."""
    rules = _rules.get(context) if context is not None else None
    if rules is None:
        rules = load_rules() if options.packaged_rules else []
        for path in options.region_rules:
            rules = rules + load_rules(path)
        if context is not None:
            _rules[context] = rules
    return rules


def engine_of(options: OcrOptions) -> Engine:
    return get_engine(options.engine, options.model, options.settings(), options.min_confidence)


def applies(asset: Asset) -> bool:
    if asset.format == IMAGE:
        return True
    if asset.format == "dicom":
        from medscrub_dicom.volume import datasets_of

        from .dicom import has_pixels

        return any(has_pixels(ds) for ds in datasets_of(asset.data))
    return False


@dataclass
class Result:
    boxes: list[list[Box]]  # per frame
    searched: int  # frames the detector looked at in full
    rule_boxes: int


def erase(
    count: int, frame: Callable[[int], np.ndarray], paint: Callable[[int, list[Box]], None],
    device: Device | None, options: OcrOptions, context,
) -> Result:
    """Find the boxes of every frame and paint them (the format-free part)."""
    ruled = boxes_for(rules_of(context, options), device) if device is not None else []
    if options.ocr == "always" or not ruled:
        found, searched = find_in_frames(count, frame, engine_of(options), options.strategy(),
                                         options.frame_tolerance)
    else:
        found, searched = [[] for _ in range(count)], 0
    boxes = [merge(ruled + list(b)) if ruled else list(b) for b in found]
    for i, frame_boxes in enumerate(boxes):
        if frame_boxes:
            paint(i, frame_boxes)
    return Result(boxes, searched, len(ruled))


def _preview_frames(boxes: list[list[Box]], wanted: int) -> list[int]:
    ranked = sorted(range(len(boxes)), key=lambda i: (-len(boxes[i]), i))
    return sorted(ranked[:wanted]) if wanted else []


def _summary(result: Result, engine: str) -> str:
    total = sum(len(b) for b in result.boxes)
    frames = sum(1 for b in result.boxes if b)
    note = f"{total} boxes in {frames} of {len(result.boxes)} frames"
    if result.rule_boxes:
        note += f", {result.rule_boxes} from region rules"
    return note + f" ({engine}, {result.searched} frames searched in full)"


def clean(asset: Asset, context) -> list[Change]:
    options = options_of(context)
    if asset.format == "dicom":
        return clean_dicom(asset, context, options)
    if asset.format == IMAGE:
        return clean_image(asset, context, options)
    return []


def clean_dicom(asset: Asset, context, options: OcrOptions) -> list[Change]:
    """Every dataset of the asset: one image, or each image of a series that
    the run grouped for a volume cleaner."""
    from medscrub_dicom.volume import datasets_of

    datasets = datasets_of(asset.data)
    changes: list[Change] = []
    boxes: list[str] = []
    summaries: list[str] = []
    for n, ds in enumerate(datasets):
        where = f"image {n + 1} of {len(datasets)}, " if len(datasets) > 1 else ""
        changes += _clean_dataset(ds, asset, context, options, where, boxes, summaries)
    if boxes:
        asset.flags["text_boxes"] = "; ".join(boxes)
    if summaries:
        asset.flags["erase_text"] = "; ".join(summaries)
    return changes


def _clean_dataset(ds, asset: Asset, context, options: OcrOptions, where: str, boxes: list[str],
                   summaries: list[str]) -> list[Change]:
    from pydicom.uid import UID

    from .dicom import DicomImage, has_pixels, transfer_syntax

    if not has_pixels(ds) or options.only_flagged and _flag(ds) not in ("yes", "possible"):
        return []
    image = DicomImage(ds)
    device = Device(str(ds.get("Manufacturer", "") or ""), str(ds.get("ManufacturerModelName", "") or ""),
                    int(ds.Rows), int(ds.Columns))
    black = image.black()

    def paint(i: int, found: list[Box]) -> None:
        fill(image.array[i], found, options.fill, black, indexed=image.indexed)

    def frame(i: int) -> np.ndarray:
        return image.frame(i)

    result = erase(image.frames_count, frame, paint, device, options, context)
    changes: list[Change] = []
    old_ts = UID(transfer_syntax(ds))
    summary = where + _summary(result, options.engine)
    if any(result.boxes):
        new_ts = image.store()
        detail = summary
        if str(old_ts) != new_ts:
            detail += f"; transfer syntax {old_ts.name} -> {UID(new_ts).name}"
        changes.append(Change("pixels", "(7FE0,0010) PixelData", NAME, detail))
        _mark_clean_pixel_data(ds)
        boxes.append(where + boxes_text(result.boxes))
        for i in _preview_frames(result.boxes, options.previews):
            title = f"erase-text {where}frame {i + 1} of {image.frames_count}: {len(result.boxes[i])} boxes"
            asset.previews.append(Preview(title, png(image.frame(i, original=True), result.boxes[i]),
                                          png(image.frame(i), result.boxes[i], (0, 255, 0))))
    summaries.append(summary)
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() != "NO":
        ds.BurnedInAnnotation = "NO"
        changes.append(Change("replace", "(0028,0301) BurnedInAnnotation", NAME, "NO: every frame was searched"))
    return changes


def _flag(ds) -> str | None:
    """The DICOM plugin's view of burned-in text, computed now: its inspect
    hook runs after the cleaners."""
    from medscrub_dicom.burned_in import burned_in_status

    return burned_in_status(ds)


def _mark_clean_pixel_data(ds) -> None:
    """DeidentificationMethodCodeSequence gets 113101 (Clean Pixel Data Option)."""
    from medscrub_dicom.markers import mark_clean_pixel_data

    mark_clean_pixel_data(ds)


def clean_image(asset: Asset, context, options: OcrOptions) -> list[Change]:
    data = asset.data
    pixels = data.pixels
    view = as_rgb(to_uint8(pixels))
    original = view.copy()
    black = np.zeros(pixels.shape[2:], pixels.dtype)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        black[3] = 255

    def paint(_: int, boxes: list[Box]) -> None:
        fill(pixels, boxes, options.fill, black)

    result = erase(1, lambda _: view, paint, None, options, context)
    asset.flags["erase_text"] = _summary(result, options.engine)
    if not result.boxes[0]:
        return []
    asset.flags["text_boxes"] = boxes_text(result.boxes)
    if options.previews:
        after = as_rgb(to_uint8(pixels))
        asset.previews.append(Preview(f"erase-text: {len(result.boxes[0])} boxes",
                                      png(original, result.boxes[0]), png(after, result.boxes[0], (0, 255, 0))))
    return [Change("pixels", "pixels", NAME, _summary(result, options.engine))]
