"""DICOM WSI label instances written with a generated label: ``[wsi] dicom_label = "replace"``.

A LABEL instance of VL Whole Slide Microscopy Image Storage is read and
cleaned by medscrub-dicom like every instance of the slide (its profile
empties LabelText and BarcodeValue and maps the UIDs consistently); this
module only replaces its pixels, after the profile and the cleaners:

* the new image is :func:`.label.label_picture` of the slide's total pixel
  matrix size (at most ``LABEL_MAX_SIDE`` on its longer side), showing
  ``DE-IDENTIFIED`` and the slide pseudonym, in the instance's own sample
  layout (grey repeated into RGB for a colour label, so the optical path's
  ICC profile and the photometric conditions of the IOD stay as they were);
* it is one frame: Rows and Columns are its size, TotalPixelMatrixRows and
  Columns match, the per-frame functional groups keep their first item at
  position (1, 1), and the pixel spacing grows where the label was shrunk, so
  the imaged volume stays the same;
* it is stored by medscrub-dicom's ``pixels.store`` (native little endian);
  BurnedInAnnotation becomes NO (a pseudonym does not identify the patient)
  and the Clean Pixel Data option is added to the de-identification method.

The slide pseudonym is keyed on the slide's ContainerIdentifier (else its
SeriesInstanceUID), read in the rules hook before the profile replaces it,
so every label of one slide shows the same pseudonym in every run.
"""

from __future__ import annotations

import numpy as np

from medscrub import Asset

from .label import label_picture
from .options import WsiOptions
from .previews import Pictures
from .reader import LABEL_MAX_SIDE

WHO = "medscrub-wsi"
_PSEUDONYM = "_medscrub_wsi_slide"  # kept on the dataset object between the hooks, never written


def note_slide(ds, item_id: str, context) -> None:
    """Before the profile: remember the slide pseudonym on the dataset."""
    key = (str(ds.get("ContainerIdentifier", "") or "").strip()
           or str(ds.get("SeriesInstanceUID", "") or "").strip() or f"item:{item_id}")
    ds.__dict__[_PSEUDONYM] = context.pseudonyms.pseudonym("slide", key, prefix="S")


def replace_label(ds, asset: Asset, context) -> None:
    """Put a generated pseudonym label into ``ds`` (cleaned by the profile)."""
    from medscrub_dicom.markers import mark_clean_pixel_data
    from medscrub_dicom.pixels import has_pixels, store

    if not has_pixels(ds):
        asset.flags["wsi.dicom_label"] = "no pixel data to replace"
        return
    pseudonym = ds.__dict__.get(_PSEUDONYM)
    if pseudonym is None:  # the rules hook did not see it: key on the instance alone
        note_slide(ds, asset.item.id, context)
        pseudonym = ds.__dict__[_PSEUDONYM]
    total_rows = int(ds.get("TotalPixelMatrixRows") or ds.Rows)
    total_columns = int(ds.get("TotalPixelMatrixColumns") or ds.Columns)
    scale = min(1.0, LABEL_MAX_SIDE / max(total_rows, total_columns, 1))
    rows, columns = max(16, round(total_rows * scale)), max(16, round(total_columns * scale))
    image = np.asarray(label_picture(columns, rows, ["DE-IDENTIFIED", pseudonym]))
    colour = int(ds.get("SamplesPerPixel", 1) or 1) == 3
    if colour:
        image = np.repeat(image[..., None], 3, axis=2)
    old_frames = int(ds.get("NumberOfFrames", 1) or 1)
    before = _first_frame(ds) if context.recipe.run.internal_previews else None
    syntax = store(ds, image, "RGB" if colour else "MONOCHROME2", WHO)
    ds.NumberOfFrames = 1
    if "TotalPixelMatrixRows" in ds or "TotalPixelMatrixColumns" in ds:
        ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = rows, columns
    _one_frame_groups(ds, total_rows / rows, total_columns / columns)
    ds.BurnedInAnnotation = "NO"
    mark_clean_pixel_data(ds)
    asset.record("pixels", "(7FE0,0010) PixelData", "wsi",
                 f"the label replaced by a generated {columns}x{rows} label that shows the slide pseudonym "
                 f"({old_frames} frame{'s' if old_frames != 1 else ''} before; {syntax})")
    asset.record("replace", "(0028,0301) BurnedInAnnotation", "wsi", "NO: the label shows only a pseudonym")
    asset.flags["wsi.dicom_label"] = "replaced by a pseudonym label"
    if (context.options("wsi") or WsiOptions()).previews:
        pictures = Pictures()
        pictures.add(f"DICOM WSI label ({total_columns}x{total_rows}): replaced by a pseudonym label", before, image)
        asset.previews += pictures.previews


def _first_frame(ds) -> np.ndarray | None:
    """The input label's first frame as 8-bit pixels, for an internal picture."""
    try:
        pixels = ds.pixel_array
    except Exception:  # a codec that is not installed: no picture, the label is replaced all the same
        return None
    frame = pixels[0] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels
    if frame.dtype != np.uint8:
        return None
    return frame


def _one_frame_groups(ds, row_factor: float, column_factor: float) -> None:
    """Functional groups for the one new frame: the first per-frame item at
    the matrix origin, and the pixel spacing scaled with the image."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) > 0:
        del per_frame[1:]
        for position in per_frame[0].get("PlanePositionSlideSequence") or ():
            position.RowPositionInTotalImagePixelMatrix = 1
            position.ColumnPositionInTotalImagePixelMatrix = 1
    if row_factor == 1 and column_factor == 1:
        return
    groups = [*(ds.get("SharedFunctionalGroupsSequence") or ()), *(per_frame or ())]
    for group in groups:
        for measures in group.get("PixelMeasuresSequence") or ():
            spacing = measures.get("PixelSpacing")
            if spacing is not None and len(spacing) == 2:
                # PixelSpacing is (between rows, between columns)
                measures.PixelSpacing = [format(float(spacing[0]) * row_factor, ".8g"),
                                         format(float(spacing[1]) * column_factor, ".8g")]
