"""A small real 3DHistech MRXS slide, full of made-up PHI.

No library writes MRXS, so :func:`write_mrxs` lays one out from the format's
published description: ``NAME.mrxs`` next to a folder ``NAME/`` holding
``Slidedat.ini`` (UTF-8 with a BOM, CRLF lines), ``Index.dat`` (version,
SLIDE_ID, then little-endian 32-bit pointers to record tables whose records
are linked lists of data pages) and data files (a header with the version,
SLIDE_ID and file number, then the packed JPEG images).

The pyramid has three levels of 256x256 JPEG images (4x4, 2x2, 1x1) and a
camera position buffer; the associated images (macro, label, preview, whole
slide photo) show PHI as rendered text, and every metadata place the shared
notes list holds a PHI string.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import slides
from PIL import Image

SLIDE_ID = "7F3A9C2E51B84D06A1E2C3D4B5F60718"
DATE_DOTTED = "2021.03.14"
PHI = [*slides.PHI, DATE_DOTTED, "2021-03-14T09:22:33"]
IMAGE = 256
IMAGES_ACROSS = 4
LEVELS = 3
MPP = "0.242797397769517"
VERSION = b"01.02"
HEADER_PADDING = 256


@dataclass
class MrxsSlide:
    """What a test needs to know about the slide it wrote."""

    mrxs: Path
    folder: Path
    tiles: list[list[bytes]]  # per level, the JPEG images
    associated: dict[str, bytes] = field(default_factory=dict)  # macro, label, preview, wholeslide

    @property
    def files(self) -> list[Path]:
        return [self.mrxs, *sorted(p for p in self.folder.rglob("*") if p.is_file())]


def _photo(width: int, height: int) -> bytes:
    """A photo of the PHI text with grain of its own, so that no two photos
    share runs of JPEG bytes a test could mistake for one another."""
    grain = slides.RNG.integers(-12, 12, (height, width, 3))
    return slides.jpeg_bytes(np.clip(slides.phi_picture(width, height) + grain, 0, 255).astype(np.uint8))


def _page(entries: list[tuple[int, ...]], next_page: int = 0) -> bytes:
    out = struct.pack("<ii", len(entries), next_page)
    for entry in entries:
        out += struct.pack(f"<{len(entry)}i", *entry)
    return out


class _Data:
    """One data file being written: the header, then appended records."""

    def __init__(self, number: int, utf16: bool) -> None:
        self.number = number
        if utf16:  # newer slides: UTF-16LE, cut to the ASCII length
            ident = SLIDE_ID.encode("utf-16-le")[: len(SLIDE_ID)]
            num = f"{number:03d}".encode("utf-16-le")[:3]
        else:
            ident, num = SLIDE_ID.encode(), f"{number:03d}".encode()
        padding = f"ProfileName={slides.OPERATOR}".encode().ljust(HEADER_PADDING, b"\0")
        self.body = bytearray(VERSION + ident + num + padding)

    def add(self, data: bytes) -> tuple[int, int, int]:
        offset = len(self.body)
        self.body += data
        return offset, len(data), self.number


def write_mrxs(folder: Path, stem: str = slides.STEM, utf16_headers: bool = False,
               macro: np.ndarray | None = None) -> MrxsSlide:
    """Write ``folder/stem.mrxs`` and ``folder/stem/``; return what was written.
    ``macro`` replaces the default macro photo."""
    folder.mkdir(parents=True, exist_ok=True)
    data_dir = folder / stem
    data_dir.mkdir()
    mrxs = folder / f"{stem}.mrxs"
    mrxs.write_bytes(b"\x01\x00\x00\x00")  # its content is not documented; readers only need it to exist

    level0 = slides.tissue(IMAGE * IMAGES_ACROSS, IMAGE * IMAGES_ACROSS)
    d0, d1 = _Data(0, utf16_headers), _Data(1, utf16_headers)
    tiles: list[list[bytes]] = []
    hier: list[list[tuple[int, int, int, int]]] = []
    for level in range(LEVELS):
        concat = 1 << level
        scaled = np.asarray(Image.fromarray(level0).resize(
            (level0.shape[1] // concat, level0.shape[0] // concat), Image.BILINEAR))
        entries, jpegs = [], []
        for y in range(0, IMAGES_ACROSS, concat):
            for x in range(0, IMAGES_ACROSS, concat):
                px, py = x // concat * IMAGE, y // concat * IMAGE
                jpeg = slides.jpeg_bytes(np.ascontiguousarray(scaled[py:py + IMAGE, px:px + IMAGE]), 90)
                jpegs.append(jpeg)
                offset, length, number = (d0 if level < 2 else d1).add(jpeg)
                entries.append((y * IMAGES_ACROSS + x, offset, length, number))
        tiles.append(jpegs)
        hier.append(entries)

    # associated images: label in the middle of Data0001, macro last
    associated = {
        "preview": _photo(300, 110),
        "label": _photo(200, 120),
        "wholeslide": _photo(320, 100),
    }
    positions = b"".join(
        struct.pack("<Bii", 1, (i % IMAGES_ACROSS) * IMAGE, (i // IMAGES_ACROSS) * IMAGE)
        for i in range(IMAGES_ACROSS * IMAGES_ACROSS)
    )
    records = {name: d1.add(jpeg) for name, jpeg in associated.items()}
    records["positions"] = d1.add(positions)
    associated["macro"] = _photo(400, 150) if macro is None else slides.jpeg_bytes(macro, 90)
    records["macro"] = d1.add(associated["macro"])
    # nonhier order follows Slidedat.ini: the scan data layer, then the position buffer
    nonhier_order = ["macro", "label", "preview", "wholeslide", "positions"]

    index = bytearray(VERSION + SLIDE_ID.encode())
    roots_at = len(index)
    index += bytes(8)
    hier_table = len(index)
    index += bytes(4 * LEVELS)
    nonhier_table = len(index)
    index += bytes(4 * len(nonhier_order))
    struct.pack_into("<ii", index, roots_at, hier_table, nonhier_table)

    def add_record(table: int, slot: int, pages: list[list[tuple[int, ...]]]) -> None:
        head = len(index)
        index.extend(bytes(8))  # the first page: no items, a pointer to the next
        struct.pack_into("<i", index, table + 4 * slot, head)
        previous = head
        for entries in pages:
            at = len(index)
            struct.pack_into("<i", index, previous + 4, at)
            index.extend(_page(entries))
            previous = at

    for level, entries in enumerate(hier):
        # level 0 in two pages, to walk a page chain
        pages = [entries[:8], entries[8:]] if len(entries) > 8 else [entries]
        add_record(hier_table, level, pages)
    for slot, name in enumerate(nonhier_order):
        offset, length, number = records[name]
        add_record(nonhier_table, slot, [[(0, 0, offset, length, number)]])

    (data_dir / "Index.dat").write_bytes(bytes(index))
    (data_dir / "Data0000.dat").write_bytes(bytes(d0.body))
    (data_dir / "Data0001.dat").write_bytes(bytes(d1.body))
    (data_dir / "Slidedat.ini").write_bytes(b"\xef\xbb\xbf" + slidedat().replace("\n", "\r\n").encode())
    return MrxsSlide(mrxs, data_dir, tiles, associated)


def slidedat() -> str:
    levels = []
    for level in range(LEVELS):
        levels.append(f"""
[LAYER_0_LEVEL_{level}_SECTION]
OVERLAP_X = 0
OVERLAP_Y = 0
MICROMETER_PER_PIXEL_X = {float(MPP) * (1 << level)!r}
MICROMETER_PER_PIXEL_Y = {float(MPP) * (1 << level)!r}
IMAGE_FORMAT = JPEG
IMAGE_FILL_COLOR_BGR = 16777215
DIGITIZER_WIDTH = {IMAGE}
DIGITIZER_HEIGHT = {IMAGE}
IMAGE_CONCAT_FACTOR = {0 if level == 0 else 1}
""")
    hier_vals = "".join(
        f"HIER_0_VAL_{level} = ZoomLevel_{level}\nHIER_0_VAL_{level}_SECTION = LAYER_0_LEVEL_{level}_SECTION\n"
        for level in range(LEVELS)
    )
    return f"""[GENERAL]
SLIDE_VERSION = 01.02
CURRENT_SLIDE_VERSION = 1.9
SLIDE_NAME = {slides.STEM}
PROJECT_NAME = {slides.INSTITUTION} {slides.NAME}
SLIDE_ID = {SLIDE_ID}
SLIDE_CREATIONDATETIME = {DATE_DOTTED} 10:22:33
SLIDE_UTC_CREATIONDATETIME = 2021-03-14T09:22:33
SCANNER_HARDWARE_ID = {slides.SERIAL}
SCANNER_HARDWARE_VERSION = 1.0
SCANNER_SOFTWARE_VERSION = 2.0.1
SLIDE_COMMENT = biopsy of {slides.NAME} {slides.MRN}
OBJECTIVE_MAGNIFICATION = 20
IMAGENUMBER_X = {IMAGES_ACROSS}
IMAGENUMBER_Y = {IMAGES_ACROSS}
CameraImageDivisionsPerSide = 1

[HIERARCHICAL]
HIER_COUNT = 1
NONHIER_COUNT = 2
INDEXFILE = Index.dat
HIER_0_NAME = Slide zoom level
HIER_0_COUNT = {LEVELS}
{hier_vals}NONHIER_0_NAME = Scan data layer
NONHIER_0_COUNT = 4
NONHIER_0_VAL_0 = ScanDataLayer_SlideThumbnail
NONHIER_0_VAL_0_SECTION = NONHIERLAYER_0_LEVEL_0_SECTION
NONHIER_0_VAL_1 = ScanDataLayer_SlideBarcode
NONHIER_0_VAL_1_SECTION = NONHIERLAYER_0_LEVEL_1_SECTION
NONHIER_0_VAL_2 = ScanDataLayer_SlidePreview
NONHIER_0_VAL_2_SECTION = NONHIERLAYER_0_LEVEL_2_SECTION
NONHIER_0_VAL_3 = ScanDataLayer_WholeSlide
NONHIER_0_VAL_3_SECTION = NONHIERLAYER_0_LEVEL_3_SECTION
NONHIER_1_NAME = VIMSLIDE_POSITION_BUFFER
NONHIER_1_COUNT = 1
NONHIER_1_VAL_0 = default
NONHIER_1_VAL_0_SECTION = NONHIERLAYER_1_LEVEL_0_SECTION

[DATAFILE]
FILE_COUNT = 2
FILE_0 = Data0000.dat
FILE_1 = Data0001.dat
{"".join(levels)}
[NONHIERLAYER_0_LEVEL_0_SECTION]
THUMBNAIL_IMAGE_TYPE = JPEG

[NONHIERLAYER_0_LEVEL_1_SECTION]
BARCODE_IMAGE_TYPE = JPEG
BARCODE_VALUE = {slides.BARCODE}

[NONHIERLAYER_0_LEVEL_2_SECTION]
PREVIEW_IMAGE_TYPE = JPEG

[NONHIERLAYER_0_LEVEL_3_SECTION]
WHOLESLIDE_IMAGE_TYPE = JPEG

[NONHIERLAYER_1_LEVEL_0_SECTION]
VIMSLIDE_POSITION_DATA_FORMAT_VERSION = 257
"""
