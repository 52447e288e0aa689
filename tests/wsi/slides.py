"""Small real slides of every supported vendor, full of made-up PHI.

The TIFF-based ones are written with tifffile; NDPI, whose 64-bit offsets
tifffile cannot write, with :func:`write_ndpi` below.  Labels and macros show
the PHI as rendered text; every metadata place the vendors use holds a PHI
string.  ``PHI`` lists the byte strings no output may contain.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageCms, ImageDraw, ImageFont

NAME = "Kowalczyk^Marianna"
MRN = "MRN44172209"
BARCODE = "S24-55123-A1"
OPERATOR = "opjsmithson"
SERIAL = "SN9X8Y7Z6Q"
INSTITUTION = "StMarysHospital"
STEM = "Kowalczyk_MRN44172209"
DATE_ISO = "2021-03-14"
DATE_TIFF = "2021:03:14 10:22:33"
DATE_US = "03/14/21"
DATE_DICOM = "20210314102233.000000"

PHI = [NAME, MRN, BARCODE, OPERATOR, SERIAL, INSTITUTION, STEM, DATE_ISO, DATE_TIFF, DATE_US, "20210314",
       "Kowalczyk", "Marianna", "2021/03/14"]

TILE = 256
RNG = np.random.default_rng(7)


def tissue(width: int, height: int) -> np.ndarray:
    """Smooth random colour blobs: JPEG-compressible like tissue."""
    small = RNG.integers(90, 250, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.BILINEAR)
    return np.array(image)


def phi_picture(width: int, height: int, grey: bool = False) -> np.ndarray:
    image = Image.new("RGB", (width, height), (235, 235, 225))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate([NAME, MRN, BARCODE, DATE_ISO]):
        draw.text((6, 6 + 14 * i), line, fill=(0, 0, 0))
    array = np.asarray(image)
    return array[..., 0].copy() if grey else array


def slide_photo(width: int = 900, height: int = 300, label_end: str = "left") -> np.ndarray:
    """A macro photo of a whole glass slide: grey glass, pink tissue and, at
    ``label_end`` (left, right, top or bottom), a white paper label printed
    with the PHI in black, large enough to read, and a barcode.  Upright
    (``height`` x ``width``) for top and bottom."""
    upright = label_end in ("top", "bottom")
    if upright:
        width, height = height, width
    image = Image.fromarray(RNG.integers(128, 142, (height, width, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    long_side = max(width, height)
    label = int(long_side * 0.28)
    start = label_end in ("left", "top")
    at = 8 if start else long_side - label - 8
    x0, y0, x1, y1 = (8, at, width - 8, at + label) if upright else (at, 8, at + label, height - 8)
    draw.rectangle((x0, y0, x1, y1), fill=(246, 246, 240))
    font = ImageFont.load_default(size=max(12, min(x1 - x0, 4 * (y1 - y0)) // 14))
    step = (y1 - y0) // 8
    for i, line in enumerate([NAME, MRN, BARCODE, DATE_ISO]):
        draw.text((x0 + 10, y0 + 12 + i * step), line, fill=(0, 0, 0), font=font)
    for i in range(24):  # a barcode under the text
        if (i * 7) % 3:
            bar = x0 + 12 + i * (x1 - x0 - 24) // 24
            draw.rectangle((bar, y0 + 5 * step, bar + 3, y1 - 16), fill=(0, 0, 0))
    # tissue: pink and purple blobs on the rest of the glass
    lo, hi = (label + 80, long_side - 40) if start else (40, long_side - label - 80)
    short_side = min(width, height)
    r = short_side // 7
    for i in range(14):
        along = lo + (hi - lo) * (i % 7 + 0.5) / 7
        across = short_side * (0.3 + 0.4 * (i // 7))
        cx, cy = (across, along) if upright else (along, across)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(205 - 5 * i, 110 + 3 * i, 170 + 2 * i))
    return np.array(image)


def jpeg_bytes(array: np.ndarray, quality: int = 85) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _text_tags(extra: bool = True) -> list[tuple]:
    tags = [
        (306, "s", 0, DATE_TIFF, True),
        (315, "s", 0, OPERATOR, True),
        (316, "s", 0, f"{INSTITUTION}-scanner", True),
    ]
    if extra:
        tags += [(269, "s", 0, f"{STEM}.tif", True), (33432, "s", 0, f"(c) {INSTITUTION}", True),
                 (65000, "s", 0, f"private {NAME}", True)]
    return tags


def append_slack(path: Path) -> None:
    """Unreferenced bytes at the end holding PHI, as a crude editor leaves."""
    with open(path, "ab") as f:
        f.write(b"\0" * 8 + f"old label {NAME} {MRN}".encode())


def hide_tail(path: Path, marker: str, hidden: str) -> None:
    """Replace ``marker`` in the file by a NUL and ``hidden`` (same length):
    the text after the NUL is an old value's tail that readers do not show."""
    data = bytearray(path.read_bytes())
    at = data.find(marker.encode())
    assert at > 0
    payload = b"\0" + hidden.encode()
    payload = payload[: len(marker)].ljust(len(marker), b"\0")
    data[at:at + len(marker)] = payload
    path.write_bytes(bytes(data))


# -- Aperio SVS --------------------------------------------------------------------

def aperio_description(width: int, height: int, scratch: bool = True) -> str:
    fields = [
        "AppMag = 20", "StripeWidth = 1000", f"ScanScope ID = {SERIAL}", f"Filename = {STEM}",
        f"Title = {NAME}", f"Date = {DATE_US}", "Time = 10:22:33", "Time Zone = GMT+01:00", f"User = {OPERATOR}",
        f"Barcode = {BARCODE}", f"ImageID = {MRN}", f"DSR ID = {INSTITUTION}-dsr", "Rack = 12", "Slide = 3",
        f"Parmset = {INSTITUTION} parmset", "MPP = 0.4990", "Left = 25.691574", "Top = 23.449873",
    ]
    if scratch:
        fields.append("Scratch = " + "X" * 40)
    return (f"Aperio Image Library v12.0.5\r\n{width}x{height} [0,0 {width}x{height}] ({TILE}x{TILE}) "
            f"JPEG/RGB Q=70|" + "|".join(fields))


def write_svs(path: Path, gt450: bool = False, macro: np.ndarray | None = None) -> Path:
    level0, level1 = tissue(1024, 768), tissue(512, 384)
    thumb = tissue(256, 192)
    label = phi_picture(200, 120)
    macro = phi_picture(400, 150) if macro is None else macro
    with tifffile.TiffWriter(path) as tw:
        tw.write(level0, tile=(TILE, TILE), compression="jpeg", description=aperio_description(1024, 768),
                 metadata=None, extratags=_text_tags(), subfiletype=0)
        tw.write(thumb, compression="jpeg", description=aperio_description(1024, 768, scratch=False).replace(
            "[0,0 1024x768] (256x256) JPEG/RGB Q=70", "-> 256x192 - "), metadata=None, rowsperstrip=64)
        tw.write(level1, tile=(TILE, TILE), compression="jpeg", subfiletype=1, metadata=None,
                 description=aperio_description(512, 384, scratch=False))
        label_desc = "" if gt450 else "Aperio Image Library v12.0.5\r\nlabel 200x120"
        macro_desc = "" if gt450 else f"Aperio Image Library v12.0.5\r\nmacro {macro.shape[1]}x{macro.shape[0]}"
        tw.write(label, compression="lzw", subfiletype=1, description=label_desc or None, metadata=None,
                 extratags=[(315, "s", 0, OPERATOR, True)])
        tw.write(macro, compression="jpeg", subfiletype=9, description=macro_desc or None, metadata=None)
    hide_tail(path, "Scratch = " + "X" * 40, f"{NAME} {MRN}")
    append_slack(path)
    return path


# -- generic tiled TIFF and OME-TIFF -----------------------------------------------------

def write_generic(path: Path, byteorder: str = "<") -> Path:
    with tifffile.TiffWriter(path, byteorder=byteorder) as tw:
        tw.write(tissue(1024, 768), tile=(TILE, TILE), compression="jpeg", metadata=None,
                 description=f"Scanned for {NAME} {MRN}", extratags=_text_tags())
        tw.write(tissue(512, 384), tile=(TILE, TILE), compression="jpeg", subfiletype=1, metadata=None)
        # a hidden label: a stripped image no slide reader shows
        tw.write(phi_picture(200, 120), compression="lzw", metadata=None, description=f"label {BARCODE}")
    return path


def write_ome(path: Path, macro: np.ndarray | None = None) -> Path:
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(tissue(1024, 768), tile=(TILE, TILE), compression="jpeg", subifds=1, photometric="rgb",
                 metadata={"axes": "YXS", "Name": f"{STEM}", "Description": f"{NAME} biopsy",
                           "AcquisitionDate": "2021-03-14T10:22:33"},
                 extratags=_text_tags(extra=False))
        tw.write(tissue(512, 384), tile=(TILE, TILE), compression="jpeg", subfiletype=1, photometric="rgb",
                 metadata=None)
        tw.write(phi_picture(400, 150) if macro is None else macro, compression="jpeg", photometric="rgb",
                 metadata={"axes": "YXS", "Name": "macro"})
        tw.write(phi_picture(200, 120), compression="lzw", photometric="rgb", metadata={"axes": "YXS", "Name": "label"})
    return path


# -- Philips TIFF ------------------------------------------------------------------------

def _attr(name: str, value: str, pmsvr: str = "IString") -> str:
    return f'<Attribute Name="{name}" Group="0x0000" Element="0x0000" PMSVR="{pmsvr}">{value}</Attribute>'


def philips_xml(levels: int, label_jpeg: bytes, macro_jpeg: bytes) -> str:
    import base64

    reps = "".join(
        '<DataObject ObjectType="PixelDataRepresentation">'
        + _attr("PIIM_PIXEL_DATA_REPRESENTATION_NUMBER", str(i), "IUInt16")
        + _attr("DICOM_PIXEL_SPACING", f'"{0.00025 * 2 ** i:.8f}" "{0.00025 * 2 ** i:.8f}"', "IDoubleArray")
        + "</DataObject>"
        for i in range(levels)
    )
    wsi = ('<DataObject ObjectType="DPScannedImage">'
           + _attr("PIM_DP_IMAGE_TYPE", "WSI")
           + _attr("DICOM_PIXEL_SPACING", '"0.00025" "0.00025"', "IDoubleArray")
           + _attr("DICOM_DERIVATION_DESCRIPTION",
                   f'tiff-useBigTIFF=1-useRgb=0-levels=40,20-processing=0-q80-sourceFilename="{STEM}.isyntax"')
           + _attr("DICOM_ACQUISITION_DATETIME", DATE_DICOM)
           + _attr("PIM_DP_SOURCE_FILE", f"{STEM}.isyntax")
           + '<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE" Group="0x1001" Element="0x8b01" '
             'PMSVR="IDataObjectArray"><Array>' + reps + "</Array></Attribute>"
           + "</DataObject>")
    label = ('<DataObject ObjectType="DPScannedImage">' + _attr("PIM_DP_IMAGE_TYPE", "LABELIMAGE")
             + _attr("PIM_DP_IMAGE_DATA", base64.b64encode(label_jpeg).decode()) + "</DataObject>")
    macro = ('<DataObject ObjectType="DPScannedImage">' + _attr("PIM_DP_IMAGE_TYPE", "MACROIMAGE")
             + _attr("PIM_DP_IMAGE_DATA", base64.b64encode(macro_jpeg).decode()) + "</DataObject>")
    return ('<?xml version="1.0" encoding="UTF-8" ?><DataObject ObjectType="DPUfsImport">'
            + _attr("DICOM_MANUFACTURER", "PHILIPS")
            + _attr("DICOM_DEVICE_SERIAL_NUMBER", SERIAL)
            + _attr("PIIM_DP_SCANNER_OPERATOR_ID", OPERATOR)
            + _attr("PIIM_DP_SCANNER_RACK_NUMBER", "12", "IUInt16")
            + _attr("PIM_DP_UFS_BARCODE", __import__("base64").b64encode(BARCODE.encode()).decode())
            + _attr("DICOM_DATE_OF_LAST_CALIBRATION", '"20210301"', "IStringArray")
            + _attr("DICOM_TIME_OF_LAST_CALIBRATION", '"101010"', "IStringArray")
            + _attr("PIM_DP_SCANNER_LOCATION", INSTITUTION)
            + '<Attribute Name="PIM_DP_SCANNED_IMAGES" Group="0x301D" Element="0x1003" PMSVR="IDataObjectArray">'
            + "<Array>" + wsi + label + macro + "</Array></Attribute></DataObject>")


def write_philips(path: Path, macro: np.ndarray | None = None) -> Path:
    label = phi_picture(200, 120)
    macro = phi_picture(400, 150) if macro is None else macro
    xml = philips_xml(2, jpeg_bytes(label), jpeg_bytes(macro))
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(tissue(1024, 768), tile=(TILE, TILE), compression="jpeg", description=xml, metadata=None,
                 software="Philips DP v1.0", extratags=_text_tags(extra=False))
        tw.write(tissue(512, 384), tile=(TILE, TILE), compression="jpeg", subfiletype=1, metadata=None)
        tw.write(label, compression="jpeg", description=f"Label {BARCODE}", metadata=None)
        tw.write(macro, compression="jpeg", description="Macro", metadata=None)
    return path


# -- Ventana BIF ---------------------------------------------------------------------------

def iscan_xmp() -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><iScan Magnification="40" ScanRes="0.2325" Z-layers="1" '
            f'UnitNumber="{SERIAL}" UserName="{OPERATOR}" BuildDate="{DATE_US} 10:22:33" Barcode1D="{BARCODE}" '
            f'Barcode2D="{MRN}" SlideAnnotation="{NAME}" BaseName="{STEM}" JP2FileName="{STEM}.jp2" '
            f'ScanMode="Auto"><Comment>{NAME} referred by {INSTITUTION}</Comment></iScan>').encode()


def encode_info(cols: int, rows: int) -> bytes:
    # tiles are numbered from the bottom row up, every other row right to left
    def number(row: int, col: int) -> int:
        from_bottom = rows - 1 - row
        return from_bottom * cols + (col if from_bottom % 2 == 0 else cols - 1 - col) + 1

    joints = []
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols:
                joints.append(f'<TileJointInfo FlagJoined="1" Confidence="100" Direction="RIGHT" '
                              f'Tile1="{number(r, c)}" Tile2="{number(r, c + 1)}" OverlapX="0" OverlapY="0"/>')
            if r + 1 < rows:
                joints.append(f'<TileJointInfo FlagJoined="1" Confidence="100" Direction="UP" '
                              f'Tile1="{number(r + 1, c)}" Tile2="{number(r, c)}" OverlapX="0" OverlapY="0"/>')
    return (f'<EncodeInfo Ver="2"><SlideInfo><AttachedImage FileName="{STEM}.bif"/></SlideInfo>'
            f'<SlideStitchInfo><ImageInfo AOIScanned="1" AOIIndex="0" NumRows="{rows}" NumCols="{cols}" '
            f'Width="{TILE}" Height="{TILE}" Pos-X="0" Pos-Y="0">' + "".join(joints)
            + '</ImageInfo></SlideStitchInfo><AoiOrigin><AOI0 OriginX="0" OriginY="0"/></AoiOrigin>'
              "</EncodeInfo>").encode()


def write_bif(path: Path, macro: np.ndarray | None = None) -> Path:
    macro = phi_picture(400, 150) if macro is None else macro
    xmp = iscan_xmp()
    info = encode_info(4, 3)
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(macro, compression="jpeg", description="Label_Image", metadata=None,
                 extratags=[(700, 1, len(xmp), xmp, True), *_text_tags(extra=False)])
        tw.write(tissue(256, 192), compression="jpeg", description="Thumbnail", metadata=None)
        tw.write(tissue(1024, 768), tile=(TILE, TILE), compression="jpeg", description="level=0 mag=40 quality=90",
                 metadata=None, extratags=[(700, 1, len(info), info, True)])
        tw.write(tissue(512, 384), tile=(TILE, TILE), compression="jpeg", description="level=1 mag=20 quality=90",
                 metadata=None)
    return path


# -- Hamamatsu NDPI --------------------------------------------------------------------------

def _ndpi_page(image: np.ndarray, lens: float, with_phi: bool) -> tuple[bytes, list[tuple[int, int, int, bytes]]]:
    """JPEG data and the entries (tag, type, count, value bytes) of one NDPI page."""
    height, width = image.shape[:2]
    data = jpeg_bytes(image, 80)

    def ascii_(text: str) -> tuple[int, int, bytes]:
        raw = text.encode() + b"\0"
        return 2, len(raw), raw

    entries = [
        (254, 4, 1, struct.pack("<I", 0)),
        (256, 4, 1, struct.pack("<I", width)),
        (257, 4, 1, struct.pack("<I", height)),
        (258, 3, 3, struct.pack("<3H", 8, 8, 8)),
        (259, 3, 1, struct.pack("<H", 7)),
        (262, 3, 1, struct.pack("<H", 6)),
        (271, *ascii_("Hamamatsu")),
        (272, *ascii_("C13210-01")),
        (273, 4, 1, b"DATA"),  # filled in by write_ndpi
        (277, 3, 1, struct.pack("<H", 3)),
        (278, 4, 1, struct.pack("<I", height)),
        (279, 4, 1, struct.pack("<I", len(data))),
        (282, 5, 1, struct.pack("<II", int(10000 / 0.46 * 1000), 1000)),
        (283, 5, 1, struct.pack("<II", int(10000 / 0.46 * 1000), 1000)),
        (296, 3, 1, struct.pack("<H", 3)),
        (305, *ascii_("NDP.scan 3.3.5")),
        (306, *ascii_(DATE_TIFF)),
        (65420, 4, 1, struct.pack("<I", 1)),
        (65421, 11, 1, struct.pack("<f", lens)),
        (65422, 9, 1, struct.pack("<i", -1200)),
        (65423, 9, 1, struct.pack("<i", 3400)),
        (65424, 9, 1, struct.pack("<i", 0)),
        (65427, *ascii_(f"{STEM} {BARCODE}")),
        (65442, *ascii_(SERIAL)),
        (65449, *ascii_("\r\n".join([
            "Objective.Lens.Magnificant=20", f"Created={DATE_TIFF.replace(':', '/', 2)}",
            f"Updated={DATE_TIFF.replace(':', '/', 2)}", f"NDP.S/N={SERIAL}", f"User={OPERATOR}",
            "Focus.Offset=12.5", f"NDP.Comment=referred {NAME}",
        ]) if with_phi else "Objective.Lens.Magnificant=20")),
    ]
    return data, entries


def write_ndpi(path: Path, macro_last: bool = True, macro: np.ndarray | None = None) -> Path:
    """A little-endian NDPI: classic TIFF header with a 64-bit first-IFD
    offset, 64-bit next-IFD offsets and each IFD followed by the high words of
    its entries' value fields."""
    pages = [_ndpi_page(tissue(1024, 768), 20.0, True), _ndpi_page(tissue(512, 384), 5.0, False)]
    macro_page = _ndpi_page(phi_picture(400, 150) if macro is None else macro, -1.0, True)
    pages = [*pages, macro_page] if macro_last else [macro_page, *pages]
    out = bytearray(b"II*\0" + b"\0" * 8)
    first_pos, next_pos = 4, None
    for data, entries in pages:
        data_at = len(out)
        out += data
        out += b"\0" * (len(out) % 2)
        values = {}
        for tag, _typ, _count, raw in entries:
            if tag == 273:
                raw = struct.pack("<I", data_at)
            if len(raw) > 4:
                values[tag] = len(out)
                out += raw + b"\0" * (len(raw) % 2)
        ifd_at = len(out)
        if next_pos is None:
            struct.pack_into("<Q", out, first_pos, ifd_at)
        else:
            struct.pack_into("<Q", out, next_pos, ifd_at)
        out += struct.pack("<H", len(entries))
        for tag, typ, count, raw in sorted(entries):
            if tag == 273:
                raw = struct.pack("<I", data_at)
            field = struct.pack("<I", values[tag]) if tag in values else raw.ljust(4, b"\0")
            out += struct.pack("<HHI", tag, typ, count) + field
        next_pos = len(out)
        out += b"\0" * 8  # next IFD, 64 bits
        out += b"\0" * (4 * len(entries))  # high words: all zero below 4 GiB
    path.write_bytes(bytes(out))
    return path


WSI_STUDY, WSI_SERIES = "1.2.826.0.1.3680043.2.1", "1.2.826.0.1.3680043.2.1.1"


def write_dicom_wsi(folder: Path) -> None:
    """Three instances of one DICOM WSI: VOLUME, LABEL and OVERVIEW."""
    import pydicom  # noqa: F401 - only with medscrub-dicom's dependency installed
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    for image_type in ("VOLUME", "LABEL", "OVERVIEW"):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID = "SM", NAME, MRN
        ds.StudyInstanceUID, ds.SeriesInstanceUID = WSI_STUDY, WSI_SERIES
        ds.ImageType = ["ORIGINAL", "PRIMARY", image_type, "NONE"]
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = bytes(64)
        ds.save_as(folder / f"{image_type.lower()}.dcm", enforce_file_format=True)


def label_photo(width: int = 480, height: int = 240) -> np.ndarray:
    """A photo of a slide label: the PHI printed in black on white, large
    enough to read."""
    image = Image.new("RGB", (width, height), (244, 244, 238))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=height // 9)
    for i, line in enumerate([NAME, MRN, BARCODE, DATE_ISO]):
        draw.text((14, 14 + i * height // 5), line, fill=(0, 0, 0), font=font)
    return np.array(image)


def write_dicom_wsi_label(path: Path, tiles: int = 1, size: tuple[int, int] = (480, 240)) -> Path:
    """A VL Whole Slide Microscopy LABEL instance, RGB, its label photo
    (PHI in print) in ``tiles`` frames side by side (TILED_FULL; a label has
    one frame by the standard, more only to test that case), PHI in
    LabelText, BarcodeValue, ContainerIdentifier and the patient module."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    photo = label_photo(*size)
    height, width = photo.shape[:2]
    tile_width = width // tiles
    frames = np.stack([photo[:, i * tile_width:(i + 1) * tile_width] for i in range(tiles)])

    def code(value: str, scheme: str, meaning: str) -> Dataset:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        return item

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LABEL", "NONE"]
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyDate, ds.StudyTime, ds.ContentDate, ds.ContentTime = "20210314", "102233", "20210314", "102233"
    ds.AcquisitionDateTime = DATE_DICOM
    ds.AccessionNumber, ds.Modality, ds.Manufacturer = "A7781234", "SM", "Scanner Co"
    ds.ReferringPhysicianName = "Smithson^Opal"
    ds.ManufacturerModelName, ds.DeviceSerialNumber, ds.SoftwareVersions = "WSI-1", SERIAL, "1.0"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = NAME, MRN, "19610203", "F"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = WSI_STUDY, WSI_SERIES  # the slide of write_dicom_wsi
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "S1", 1, 3
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = generate_uid(), "SLIDE_CORNER"
    ds.DimensionOrganizationType = "TILED_FULL"
    organisation = Dataset()
    organisation.DimensionOrganizationUID = generate_uid()
    ds.DimensionOrganizationSequence = Sequence([organisation])
    ds.ContainerIdentifier = BARCODE
    ds.IssuerOfTheContainerIdentifierSequence = Sequence()
    ds.ContainerTypeCodeSequence = Sequence([code("433466003", "SCT", "Microscope slide")])
    specimen = Dataset()
    specimen.SpecimenIdentifier, specimen.SpecimenUID = f"{MRN}-1", generate_uid()
    specimen.IssuerOfTheSpecimenIdentifierSequence = Sequence()
    specimen.SpecimenPreparationSequence = Sequence()
    ds.SpecimenDescriptionSequence = Sequence([specimen])
    ds.AcquisitionContextSequence = Sequence()
    ds.ImagedVolumeWidth, ds.ImagedVolumeHeight, ds.ImagedVolumeDepth = width * 0.05, height * 0.05, 1.0
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = width, height
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem, origin.YOffsetInSlideCoordinateSystem = 0.0, 0.0
    ds.TotalPixelMatrixOriginSequence = Sequence([origin])
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.NumberOfFrames, ds.Rows, ds.Columns = tiles, height, tile_width
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.AcquisitionDuration, ds.LossyImageCompression = 1.0, "00"
    ds.VolumetricProperties, ds.SpecimenLabelInImage, ds.BurnedInAnnotation = "VOLUME", "YES", "YES"
    ds.FocusMethod, ds.ExtendedDepthOfField = "AUTO", "NO"
    ds.LabelText, ds.BarcodeValue = f"{NAME} {MRN}", BARCODE
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.05, 0.05], 1.0
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    identification = Dataset()
    identification.OpticalPathIdentifier = "1"
    shared.OpticalPathIdentificationSequence = Sequence([identification])
    frame_type = Dataset()
    frame_type.FrameType = list(ds.ImageType)
    shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.NumberOfOpticalPaths, ds.TotalPixelMatrixFocalPlanes = 1, 1
    optical = Dataset()
    optical.OpticalPathIdentifier = "1"
    optical.IlluminationTypeCodeSequence = Sequence([code("111744", "DCM", "Brightfield illumination")])
    optical.IlluminationColorCodeSequence = Sequence([code("414298005", "SCT", "Full Spectrum")])
    optical.ICCProfile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    ds.OpticalPathSequence = Sequence([optical])
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
