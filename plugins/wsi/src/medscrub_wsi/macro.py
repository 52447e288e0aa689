"""Keeping a macro photo with its label area painted over: ``[wsi] macro = "blank-label"``.

A macro is a low-resolution photo of the whole glass slide.  The slide's
paper label -- the patient's name, IDs, a barcode -- covers one end of the
slide's long axis; the tissue lies on the glass of the rest.  Which end
depends on the scanner and on how the slide was loaded:

* Hamamatsu NDPI: the left end, about 30 % of the macro's width (the share
  that NDPI readers crop out as the label);
* Aperio: usually the left (or, for an upright macro, the top) end -- a
  de-identification tool for Aperio slides paints a square of the macro's
  short side there -- but sites report slides loaded the other way round;
* the other vendors: no fixed layout this plugin knows.

So the end is found in the pixels, with the vendor's usual end as a prior:
print is dark, colourless ink right next to bright, colourless paper, while
tissue is coloured and glass is even.  The label end is the one end whose
share of the long axis holds all the print (at most 60 %, or 50 % against the
vendor's usual end) and shows paper.  The area from that edge to past the
last print, and at least a third of the long axis, is painted black.  When
the print is not confined to one end, there is none, or the photo is not
shaped like a slide, the end cannot be told and the macro is removed.

Only the pixels are judged; nothing here reads or trusts metadata.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .edit import Rewrite, Value
from .tiff import (
    BITS_PER_SAMPLE,
    COMPRESSION,
    IMAGE_LENGTH,
    IMAGE_WIDTH,
    PHOTOMETRIC,
    PLANAR_CONFIG,
    RATIONAL,
    SAMPLES_PER_PIXEL,
    Ifd,
    TiffStructure,
)

ASPECT = 1.5  # long side / short side below which a photo is not a slide's shape
MIN_DEPTH = 1 / 3  # the least share of the long axis painted over
MAX_REACH = 0.6  # the print must end within this share of the long axis from the label end
MAX_REACH_UNUSUAL = 0.5  # ... and within this one when that end is not the vendor's usual
MARGIN = 0.04  # painted beyond the last print
MIN_PAPER = 0.15  # share of bright colourless pixels the printed end must show
BRIGHT, DARK, GREY = 170, 100, 48  # luma of paper, of ink; the most colour either has
ANALYSIS_SIDE = 1024  # the photo is judged at most this long
MAX_BYTES = 32 << 20  # larger macros are removed rather than decoded (memory bound)
JPEG_QUALITY = 92
USUAL_END = {"hamamatsu": "start", "aperio": "start"}
YCBCR_SUBSAMPLING, YCBCR_POSITIONING, REFERENCE_BLACK_WHITE = 530, 531, 532


@dataclass(frozen=True)
class LabelArea:
    """The painted area: ``depth`` pixels from one ``side`` of the photo."""

    side: str  # left, right, top or bottom
    depth: int
    share: float  # depth / the long side

    def describe(self) -> str:
        return f"{self.side} {round(100 * self.share)}%"


def find_label(image: np.ndarray, vendor: str | None = None) -> LabelArea | str:
    """The label area of a macro photo (8-bit grey or RGB), or why it cannot
    be told."""
    height, width = image.shape[:2]
    long_side, short_side = max(height, width), min(height, width)
    if short_side < 16:
        return f"the macro is too small to tell its label end ({width}x{height})"
    if long_side < ASPECT * short_side:
        return f"the macro is not shaped like a slide ({width}x{height}), so it has no label end"
    horizontal = width >= height
    step = max(1, -(-long_side // ANALYSIS_SIDE))
    view = image[::step, ::step]
    if not horizontal:
        view = np.swapaxes(view, 0, 1)  # the long axis runs along the columns
    luma, chroma = _luma_chroma(view)
    colourless = chroma <= GREY
    bright = colourless & (luma >= BRIGHT)
    ink = colourless & (luma <= DARK) & _near(bright, max(1, view.shape[0] // 60))
    # ink per column, less what every column has (slide edges, scratches along the slide)
    profile = ink.sum(axis=0).astype(np.float64)
    profile = np.maximum(profile - np.median(profile), 0)
    columns = len(profile)
    if profile.sum() < max(10.0, 0.0005 * ink.size):
        return "no printed label found in the macro"
    width_ = max(1, columns // 100)
    smooth = np.convolve(profile, np.ones(width_) / width_, mode="same")
    printed = np.nonzero(smooth >= max(1.0, 0.01 * view.shape[0]))[0]
    if not len(printed):
        return "no printed label found in the macro"
    reach = {"start": (int(printed[-1]) + 1) / columns, "end": (columns - int(printed[0])) / columns}
    ends = [end for end, share in reach.items() if share <= MAX_REACH]
    if len(ends) != 1:
        where = "in the middle of the slide" if ends else "at both ends or along the slide"
        return f"print {where}: the label end cannot be told"
    end = ends[0]
    usual = USUAL_END.get(vendor or "")
    if usual is not None and end != usual and reach[end] > MAX_REACH_UNUSUAL:
        return "print reaches far from the end this vendor does not put labels at: the label end cannot be told"
    band = bright[:, : int(np.ceil(reach[end] * columns))] if end == "start" else \
        bright[:, columns - int(np.ceil(reach[end] * columns)):]
    if band.mean() < MIN_PAPER:
        return "print without paper around it: the label end cannot be told"
    share = min(1.0, max(MIN_DEPTH, reach[end] + MARGIN))
    depth = min(long_side, int(np.ceil(share * long_side)))
    side = {("start", True): "left", ("end", True): "right", ("start", False): "top", ("end", False): "bottom"}
    return LabelArea(side[(end, horizontal)], depth, depth / long_side)


def paint(image: np.ndarray, area: LabelArea) -> np.ndarray:
    """A copy of ``image`` with ``area`` black."""
    out = image.copy()
    d = area.depth
    if area.side == "left":
        out[:, :d] = 0
    elif area.side == "right":
        out[:, out.shape[1] - d:] = 0
    elif area.side == "top":
        out[:d] = 0
    else:
        out[out.shape[0] - d:] = 0
    return out


def is_blanked(image: np.ndarray, tolerance: float = 6.0) -> bool:
    """Whether one end of the long axis, a third of it deep, is one flat
    colour (a painted label area, after lossy re-encoding)."""
    height, width = image.shape[:2]
    horizontal = width >= height
    long_side = width if horizontal else height
    depth = max(1, int(long_side * MIN_DEPTH) - 8)  # the rim next to the tissue rings after JPEG
    bands = (image[:, :depth], image[:, width - depth:]) if horizontal else (image[:depth], image[height - depth:])
    return any(band.size and float(band.astype(np.float32).std()) <= tolerance for band in bands)


def _luma_chroma(view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if view.ndim == 2:
        return view.astype(np.int32), np.zeros(view.shape, np.int32)
    rgb = view[..., :3].astype(np.int32)
    luma = (rgb[..., 0] * 77 + rgb[..., 1] * 150 + rgb[..., 2] * 29) >> 8
    return luma, rgb.max(axis=2) - rgb.min(axis=2)


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (a square) of a set pixel of ``mask``."""
    padded = np.pad(mask.astype(np.int32), radius + 1)
    table = padded.cumsum(0).cumsum(1)
    size = 2 * radius + 1
    h, w = mask.shape
    window = (table[size:size + h, size:size + w] - table[:h, size:size + w]
              - table[size:size + h, :w] + table[:h, :w])
    return window > 0


# -- decoding and encoding ------------------------------------------------------------


def as_8bit(image: np.ndarray) -> np.ndarray | str:
    """An 8-bit grey (H, W) or RGB (H, W, 3) picture, or why not."""
    if image.dtype != np.uint8:
        return f"the macro has {image.dtype} samples; only 8-bit macros are re-encoded"
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[..., :3])
    if image.ndim == 2:
        return image
    return f"the macro has shape {image.shape}; only grey and RGB macros are re-encoded"


def encode_picture(image: np.ndarray, fmt: str) -> bytes:
    """``image`` as a file of Pillow format ``fmt`` (JPEG, PNG, BMP)."""
    out = io.BytesIO()
    picture = Image.fromarray(image)
    if fmt == "JPEG":
        picture.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=2)  # 4:2:0, TIFF's YCbCr default
    else:
        picture.save(out, fmt)
    return out.getvalue()


def encode_strip(image: np.ndarray, compression: int) -> tuple[bytes, int]:
    """``image`` as one TIFF strip in the family of ``compression``: LZW,
    Deflate and no compression stay, every other (JPEG, JPEG 2000, ...)
    becomes baseline JPEG, which every TIFF reader decodes.  The data and
    the compression code it has."""
    if compression == 5:
        import imagecodecs

        return bytes(imagecodecs.lzw_encode(image.tobytes())), 5
    if compression in (8, 32946):
        return zlib.compress(image.tobytes(), 6), compression
    if compression == 1:
        return image.tobytes(), 1
    return encode_picture(image, "JPEG"), 7


# -- TIFF slides ----------------------------------------------------------------------


def read_tiff_image(t: TiffStructure, ifd: Ifd) -> np.ndarray | str:
    """The 8-bit picture of a main-chain IFD, decoded by tifffile, or why not."""
    import tifffile

    width, height = t.value(ifd, IMAGE_WIDTH, 0) or 0, t.value(ifd, IMAGE_LENGTH, 0) or 0
    samples = t.value(ifd, SAMPLES_PER_PIXEL, 1) or 1
    if width * height * samples > MAX_BYTES:
        return f"the macro is too large to re-encode ({width}x{height})"
    photometric = t.value(ifd, PHOTOMETRIC, None)
    if photometric not in (1, 2, 6):
        return f"the macro's photometric interpretation {photometric} is not re-encoded (grey, RGB, YCbCr only)"
    try:
        with tifffile.TiffFile(t.path) as tf:
            page = tf.pages[ifd.path[0]]
            image = page.asarray()
    except Exception as e:  # every codec raises its own kind
        return f"the macro cannot be decoded ({type(e).__name__})"
    return as_8bit(image)


def blank_tiff_macro(t: TiffStructure, ifd: Ifd, vendor: str, rw: Rewrite,
                     painted_to: dict | None = None) -> LabelArea | str:
    """Rewrite the macro of ``ifd`` with its label area painted over (the
    same size, one strip, the same compression family), or say why not;
    the caller then leaves it out.  ``painted_to`` receives the painted
    picture under the IFD's path (for the QA report)."""
    if ifd.path[1:]:
        return "the macro is a sub-image"
    image = read_tiff_image(t, ifd)
    if isinstance(image, str):
        return image
    area = find_label(image, vendor)
    if isinstance(area, str):
        return area
    painted = paint(image, area)
    if painted_to is not None:
        painted_to[ifd.path] = painted
    data, compression = encode_strip(painted, t.value(ifd, COMPRESSION, 1) or 1)
    rgb = painted.ndim == 3
    photometric = (6 if compression == 7 else 2) if rgb else 1
    tags = {
        COMPRESSION: rw.short(compression), PHOTOMETRIC: rw.short(photometric),
        BITS_PER_SAMPLE: rw.short(*([8] * (3 if rgb else 1))),
    }
    if SAMPLES_PER_PIXEL in ifd.entries or rgb:
        tags[SAMPLES_PER_PIXEL] = rw.short(3 if rgb else 1)
    if PLANAR_CONFIG in ifd.entries:
        tags[PLANAR_CONFIG] = rw.short(1)
    if photometric == 6:
        # the JPEG is 4:2:0, full-range, centred: TIFF's defaults, written only where the IFD had them
        if YCBCR_SUBSAMPLING in ifd.entries:
            tags[YCBCR_SUBSAMPLING] = rw.short(2, 2)
        if YCBCR_POSITIONING in ifd.entries:
            tags[YCBCR_POSITIONING] = rw.short(1)
        if REFERENCE_BLACK_WHITE in ifd.entries:
            tags[REFERENCE_BLACK_WHITE] = Value(RATIONAL, 6, rw.pack("12I", 0, 1, 255, 1, 128, 1, 255, 1, 128, 1, 255, 1))
    rw.replace_strips(ifd, data, tags)
    return area
