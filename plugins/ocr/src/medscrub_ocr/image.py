"""Plain 2D images (PNG, JPEG, TIFF): reader, metadata rules, writer, verifier.

A photo or a screenshot carries PHI in its metadata as well as in its pixels:
EXIF (camera owner, dates, GPS), XMP, IPTC, PNG text chunks, TIFF text tags,
comments and ICC profile descriptions.  Every one is removed: the output holds
the pixels and nothing else.  The pixels are decoded and encoded again:
PNG and TIFF losslessly (TIFF with LZW), JPEG at quality 95, the only way
Pillow writes JPEG without its metadata segments.  An EXIF orientation is
applied to the pixels first, so the picture still shows upright.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, TiffTags, UnidentifiedImageError

from medscrub import Asset, BadInput, Finding, Item

FORMAT = "image"
SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
MAGIC = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",), "TIFF": (b"II*\x00", b"MM\x00*")}
# A TIFF larger than this, tiled, or with several pages is a slide or a stack
# for another plugin (medscrub-wsi), not a photo or a scan.
MAX_TIFF_PIXELS = 100_000_000
KEPT_MODES = {"L", "RGB", "RGBA", "I;16"}
# TIFF tags that only describe the pixels; every other tag is dropped.
TIFF_STRUCTURE = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 338, 339}


@dataclass
class ImageData:
    pixels: np.ndarray  # H x W, H x W x 3 or H x W x 4
    mode: str
    kind: str  # PNG | JPEG | TIFF
    removed: list[str] = field(default_factory=list)  # metadata found in the input


def sniff(path: Path) -> str | None:
    """The image kind of a file, by name and first bytes; None if not ours."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None or not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if not any(head.startswith(m) for m in MAGIC[kind]):
        return None
    if kind == "TIFF" and not _plain_tiff(path):
        return None
    return kind


def _plain_tiff(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) != 1 or im.width * im.height > MAX_TIFF_PIXELS:
                return False
            tags = getattr(im, "tag_v2", {})
            return 322 not in tags and 323 not in tags  # TileWidth, TileLength
    except (OSError, UnidentifiedImageError, ValueError):
        return False


def metadata_names(im: Image.Image, kind: str) -> list[str]:
    """What the input holds besides pixels, named without values."""
    names = []
    info = im.info
    for key in sorted(info):
        if key in ("dpi", "gamma", "interlace", "transparency", "aspect", "compression", "progressive",
                   "progression", "jfif", "jfif_version", "jfif_unit", "jfif_density", "adobe", "adobe_transform",
                   "resolution", "duration", "loop", "background", "srgb"):
            continue
        label = {"exif": "EXIF", "xmp": "XMP", "XML:com.adobe.xmp": "XMP", "icc_profile": "ICC profile",
                 "photoshop": "Photoshop/IPTC", "comment": "comment"}.get(key, f"text chunk {key!r}")
        names.append(label)
    if kind == "JPEG":
        for marker, _ in getattr(im, "applist", []):
            if marker not in ("APP0",) and f"JPEG {marker}" not in names:
                names.append(f"JPEG {marker}")
    if kind == "TIFF":
        for tag in sorted(getattr(im, "tag_v2", {})):
            if tag not in TIFF_STRUCTURE:
                names.append(f"TIFF tag {tag} {TiffTags.lookup(tag).name}".rstrip())
    if kind != "TIFF" and im.getexif():  # a TIFF's "EXIF" is its own tags, named above
        names.append("EXIF")
    return sorted(set(names))


def _text_values(im: Image.Image) -> list[str]:
    values = []
    for value in im.info.values():
        if isinstance(value, str):
            values.append(value)
    if hasattr(im, "tag_v2"):
        for tag, value in im.tag_v2.items():
            if tag not in TIFF_STRUCTURE and isinstance(value, str):
                values.append(value)
    for value in im.getexif().values():
        if isinstance(value, str):
            values.append(value)
    return values


def read(item: Item) -> Asset:
    kind = SUFFIXES.get(item.path.suffix.lower(), "")
    try:
        with Image.open(item.path) as im:
            im.load()
            removed = metadata_names(im, kind)
            texts = _text_values(im)
            upright = ImageOps.exif_transpose(im)
            if upright is not im and im.getexif().get(0x0112, 1) != 1:
                removed.append("EXIF orientation (applied to the pixels)")
            image = upright if upright is not None else im
            if image.mode not in KEPT_MODES:
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            pixels = np.array(image)
            mode = image.mode
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise BadInput(f"cannot read the image: {type(e).__name__}: {e}") from None
    asset = Asset(item, FORMAT, ImageData(pixels, mode, kind, removed))
    for value in texts:
        value = value.strip().strip("\x00")
        if 5 <= len(value) <= 256:
            asset.remember("label", value)
    return asset


def apply_rules(asset: Asset) -> None:
    """Metadata is dropped whole; record what there was."""
    for name in asset.data.removed:
        asset.record("remove", name, "medscrub-ocr", "image metadata")
    if not asset.data.removed:
        asset.record("keep", "pixels", "medscrub-ocr", "no metadata in the input")


def write(data: ImageData, path: Path) -> None:
    image = Image.fromarray(data.pixels, mode=None)
    if data.mode == "I;16" and image.mode != "I;16":
        image = image.convert("I;16")
    # a fresh image carries no info: nothing but pixels is written
    if data.kind == "PNG":
        image.save(path, format="PNG")
    elif data.kind == "JPEG":
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        image.save(path, format="JPEG", quality=95, subsampling=0)
    else:
        image.save(path, format="TIFF", compression="tiff_lzw")


def verify(output: Path) -> list[Finding]:
    """Metadata left in an output image (there should be none)."""
    kind = SUFFIXES.get(output.suffix.lower(), "")
    try:
        with Image.open(output) as im:
            names = metadata_names(im, kind)
    except (OSError, UnidentifiedImageError) as e:
        return [Finding(str(output), "file", "unreadable", str(e)[:60])]
    return [Finding(str(output), name, "metadata") for name in names]

