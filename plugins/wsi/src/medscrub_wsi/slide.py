"""Slide vendors: recognising them, naming each IFD's role, and scrubbing.

A slide is a TIFF whose IFDs play roles: pyramid ``level``, ``thumbnail``,
``label``, ``macro``, NDPI tissue ``map``, or ``other`` (an image no reader
shows, such as a hidden label in a generic TIFF).  Labels, macros and others
are left out of the output; levels, thumbnails and maps stay with their tiles
untouched, and every text they carry goes through :mod:`.scrub`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medscrub import BadInput

from .edit import Rewrite, Value
from .scrub import FieldScrubber, find_element, scrub_aperio, scrub_key_values, scrub_xml
from .tiff import (
    DATETIME,
    IMAGE_DESCRIPTION,
    IMAGE_LENGTH,
    IMAGE_WIDTH,
    NDPI_SOURCE_LENS,
    NEW_SUBFILE_TYPE,
    SOFTWARE,
    TEXT_TYPES,
    XMP,
    Ifd,
    TiffStructure,
)

VENDORS = {
    "aperio": "Aperio SVS",
    "hamamatsu": "Hamamatsu NDPI",
    "philips": "Philips TIFF",
    "ventana": "Ventana BIF",
    "ome": "OME-TIFF",
    "generic": "generic tiled TIFF",
    "mirax": "3DHistech MRXS",
}

# Tags that describe image structure and never carry text about the patient.
STRUCTURAL = {
    254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 274, 277, 278, 279, 280, 281, 282, 283, 284,
    286, 287, 290, 291, 292, 293, 296, 297, 301, 317, 318, 319, 320, 321, 322, 323, 324, 325, 330, 332, 338,
    339, 340, 341, 347, 512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 32995, 32996, 32997,
    32998, 33550, 33922, 34264, 34675, 34735, 34736, 34737, 42113,
}
# Device type and software: kept, as the DICOM profile keeps Manufacturer and model.
KEPT_TEXT = {271: "Make", 272: "Model", 305: "Software"}
# Text tags scrubbed as fields, by name.
TEXT_TAGS = {
    269: "DocumentName", 285: "PageName", 306: "DateTime", 315: "Artist", 316: "HostComputer",
    33432: "Copyright", 42016: "ImageUniqueID", 65427: "Reference", 65442: "ScannerSerialNumber",
}
# Whole blocks of other metadata (EXIF, GPS, IPTC, Photoshop, GDAL, ImageJ): always removed.
REMOVED = {34665, 34853, 40965, 33723, 34377, 37724, 42112, 50838, 50839}

NDPI_PROPERTY_MAP = 65449
NDPI_KEEP = {"Objective.Lens.Magnificant", "NDP.S/N.Valid"}

PHILIPS_KEEP_PREFIXES = (
    "PIIM_PIXEL_DATA_REPRESENTATION", "DICOM_PIXEL", "DICOM_BITS", "DICOM_HIGH_BIT", "DICOM_SAMPLES_PER_PIXEL",
    "DICOM_PHOTOMETRIC", "DICOM_PLANAR", "DICOM_LOSSY", "DICOM_MANUFACTURER", "DICOM_SOFTWARE_VERSIONS",
    "PIM_DP_IMAGE_TYPE", "PIM_DP_IMAGE_ROWS", "PIM_DP_IMAGE_COLUMNS", "PIIM_DP_PIXEL", "PIM_DP_UFS_INTERFACE",
    "UFS_IMAGE", "DICOM_ROWS", "DICOM_COLUMNS", "DICOM_VERSION", "PIM_DP_SCANNED_IMAGES",
    "PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE", "DICOM_PIXEL_SPACING",
)
VENTANA_KEEP_ATTRS = {"Direction", "Ver", "Mode", "FocusMode", "ScanMode", "Quality", "Type", "Format", "Compression",
                      "ShowLabel", "LayerCount"}
VENTANA_LEVEL = re.compile(rb"^level=\d+( [\w-]+=[\w.-]*)*$")
OME_KEEP_ATTRS = {
    "ID", "DimensionOrder", "Type", "BigEndian", "Interleaved", "SignificantBits", "IFD", "FirstC", "FirstT",
    "FirstZ", "PlaneCount", "SamplesPerPixel", "Color", "Creator", "TheC", "TheZ", "TheT", "UUID", "Scheme",
    "schemaLocation", "xsi:schemaLocation", "Version", "Namespace", "EmissionWavelength", "ExcitationWavelength",
}
OME_ASSOCIATED = re.compile(r"^\s*(label|macro|overview|barcode|slide label|label image|macro image)\s*$", re.I)
PLACEHOLDER_DESCRIPTION = b"Removed"
# How openslide knows a kept label or macro IFD: its description starts with one of these words.
ASSOCIATED_MARKERS = {"philips": ("Macro", "Label"), "ventana": ("Label_Image", "Label Image")}


@dataclass
class Slide:
    tiff: TiffStructure
    vendor: str
    roles: dict[tuple[int, ...], str] = field(default_factory=dict)

    def role(self, ifd: Ifd) -> str:
        return self.roles.get(ifd.path, "level")


def detect(t: TiffStructure) -> str:
    """The vendor of a TIFF-like slide, or BadInput for one this plugin does not know."""
    first = t.ifds[0]
    description = t.text(first, IMAGE_DESCRIPTION)
    if t.ndpi:
        return "hamamatsu"
    if description.startswith(b"Aperio"):
        if not first.tiled:
            raise BadInput("Aperio slide whose first image is not tiled")
        return "aperio"
    if t.text(first, SOFTWARE).startswith(b"Philips"):
        if b"DPUfsImport" not in description:
            raise BadInput("Philips TIFF without its DPUfsImport XML description")
        return "philips"
    if b"iScan" in t.text(first, XMP):
        return "ventana"
    lowered = description.lower()
    if b"leica" in lowered or b"<scn" in lowered:
        raise BadInput("unknown vendor: Leica SCN slides are not supported")
    if t.text(first, SOFTWARE).startswith(b"MedScan"):
        raise BadInput("unknown vendor: Trestle slides are not supported")
    if b"<OME" in description:
        return "ome"
    if first.tiled:
        return "generic"
    raise BadInput("unknown vendor: a TIFF without a slide vendor's signature and not tiled")


def assign_roles(slide: Slide) -> None:
    t = slide.tiff
    roles = slide.roles
    chain = t.ifds
    if slide.vendor == "aperio":
        for i, ifd in enumerate(chain):
            if ifd.tiled:
                roles[ifd.path] = "level"
            elif i == 1:
                roles[ifd.path] = "thumbnail"
            else:
                lines = re.split(rb"[\r\n]+", t.text(ifd, IMAGE_DESCRIPTION))
                name = lines[1].split(b" ")[0].lower() if len(lines) > 1 and lines[1] else b""
                subfile = t.value(ifd, NEW_SUBFILE_TYPE, 0)
                if name == b"label" or (not name and subfile == 1):
                    roles[ifd.path] = "label"
                elif name == b"macro" or (not name and subfile == 9):
                    roles[ifd.path] = "macro"
                else:
                    roles[ifd.path] = "other"
    elif slide.vendor == "hamamatsu":
        for ifd in chain:
            entry = ifd.entries.get(NDPI_SOURCE_LENS)
            lens = t.floats(entry)[0] if entry is not None else None
            if lens is None:
                roles[ifd.path] = "other"
            elif lens > 0:
                roles[ifd.path] = "level"
            elif lens == -1:
                roles[ifd.path] = "macro"
            elif lens == -2:
                roles[ifd.path] = "map"
            else:
                roles[ifd.path] = "other"
    elif slide.vendor == "philips":
        for ifd in chain:
            description = t.text(ifd, IMAGE_DESCRIPTION)
            if ifd.tiled:
                roles[ifd.path] = "level"
            elif description.startswith(b"Label"):
                roles[ifd.path] = "label"
            elif description.startswith(b"Macro"):
                roles[ifd.path] = "macro"
            else:
                roles[ifd.path] = "other"
    elif slide.vendor == "ventana":
        for ifd in chain:
            description = t.text(ifd, IMAGE_DESCRIPTION)
            if b"level=" in description and ifd.tiled:
                roles[ifd.path] = "level"
            elif description in (b"Label_Image", b"Label Image"):
                roles[ifd.path] = "macro"
            elif description == b"Thumbnail":
                roles[ifd.path] = "thumbnail"
            else:
                roles[ifd.path] = "other"
    elif slide.vendor == "ome":
        xml = t.text(chain[0], IMAGE_DESCRIPTION).decode("utf-8", "replace")
        associated = ome_associated(xml)
        for i, ifd in enumerate(chain):
            roles[ifd.path] = associated.get(i, "level")
    else:
        first = chain[0]
        w0, h0 = t.value(first, IMAGE_WIDTH, 0), t.value(first, IMAGE_LENGTH, 0)
        for i, ifd in enumerate(chain):
            w, h = t.value(ifd, IMAGE_WIDTH, 0), t.value(ifd, IMAGE_LENGTH, 0)
            same_shape = h and h0 and abs((w / h) - (w0 / h0)) <= 0.05 * (w0 / h0) and w <= w0
            roles[ifd.path] = "level" if i == 0 or (ifd.tiled and same_shape) else "other"


def ome_associated(xml: str) -> dict[int, str]:
    """IFD index -> "label"/"macro" for the OME Images named like associated images."""
    found: dict[int, str] = {}
    for m in re.finditer(r"<Image\b[^>]*>", xml):
        name = re.search(r'\bName="([^"]*)"', m.group(0))
        if not name or not OME_ASSOCIATED.match(name.group(1)):
            continue
        end = find_element(xml, m.start(), "Image")
        body = xml[m.start():end]
        role = "label" if re.search("label|barcode", name.group(1), re.I) else "macro"
        for td in re.finditer(r"<TiffData\b[^>]*>", body):
            ifd = re.search(r'\bIFD="(\d+)"', td.group(0))
            count = re.search(r'\bPlaneCount="(\d+)"', td.group(0))
            start = int(ifd.group(1)) if ifd else 0
            for k in range(int(count.group(1)) if count else 1):
                found[start + k] = role
    return found


# -- building the rewrite ------------------------------------------------------------


@dataclass
class Outcome:
    rewrite: Rewrite
    dropped: dict[str, int] = field(default_factory=dict)  # role -> IFDs left out
    replaced_label: bool = False
    macro_notes: list[str] = field(default_factory=list)  # what became of each macro under blank-label


def plan_slide(slide: Slide, s: FieldScrubber, label: str, macro: str, label_image=None, macro_image=None) -> Outcome:
    """Decide every change to ``slide``: images left out, texts scrubbed.

    ``label_image(ifd) -> (width, height, jpeg bytes)`` renders a replacement
    label when ``label == "replace"``; ``macro_image(ifd)`` rewrites a macro
    with its label area painted over when ``macro == "blank-label"`` and
    returns what it painted, or a reason string when it cannot (the macro is
    then left out); it is called with the IFD and the :class:`Rewrite`.
    """
    t = slide.tiff
    rw = Rewrite(t)
    out = Outcome(rw)
    for i, ifd in enumerate(t.ifds):
        role = slide.role(ifd)
        if role == "label" and label == "replace" and label_image is not None and not ifd.tiled:
            width, height, jpeg = label_image(ifd)
            rw.replace_image(ifd, width, height, jpeg)
            out.replaced_label = True
            s.asset.record("pixels", f"{ifd.describe()} label image", "wsi", "replaced by a pseudonym label")
            continue
        if role == "macro" and macro == "blank-label" and macro_image is not None:
            area = macro_image(ifd, rw)
            if not isinstance(area, str):
                out.macro_notes.append(f"label area blanked ({area.describe()})")
                s.asset.record("pixels", f"{ifd.describe()} macro image", "wsi",
                               f"label area painted over ({area.describe()} of the long axis)")
                continue
            out.macro_notes.append(f"removed: {area}")
        if role in ("label", "other") or (role == "macro" and macro != "keep"):
            if i == 0 and slide.vendor == "ventana":
                # openslide reads the iScan XMP of a BIF from IFD 0 only, which is the macro:
                # the IFD stays as a 1x1 blank image that carries the scrubbed XMP
                rw.placeholder(ifd, PLACEHOLDER_DESCRIPTION)
            else:
                rw.drop(ifd)
            out.dropped[role] = out.dropped.get(role, 0) + 1
            s.asset.record("drop", f"{ifd.describe()} {role} image", "wsi")
    if slide.vendor == "ome":
        _check_ome_drops(slide, rw)
    for ifd in t.all_ifds():
        if ifd.path in rw.dropped:
            continue
        _scrub_ifd(slide, ifd, s, rw)
    return out


def _check_ome_drops(slide: Slide, rw: Rewrite) -> None:
    dropped = [i for i, ifd in enumerate(slide.tiff.ifds) if ifd.path in rw.dropped]
    if dropped and dropped != list(range(len(slide.tiff.ifds) - len(dropped), len(slide.tiff.ifds))):
        raise BadInput("OME-TIFF whose label or macro images come before other images; cannot renumber its IFDs")


def _scrub_ifd(slide: Slide, ifd: Ifd, s: FieldScrubber, rw: Rewrite) -> None:
    t = slide.tiff
    place = ifd.describe()
    for tag, entry in ifd.entries.items():
        if tag in rw.removed.get(ifd.path, set()) or tag in rw.values.get(ifd.path, {}):
            continue
        if tag in STRUCTURAL:
            continue
        if tag in KEPT_TEXT:
            if entry.type == 2:  # kept, but without an older value hidden after its NUL
                _set_or_remove(rw, ifd, tag, _str(t, ifd, tag), s)
            continue
        if tag in REMOVED:
            rw.remove(ifd, tag)
            s.asset.record("remove", f"{place}:tag {tag}", "wsi")
            continue
        if tag == IMAGE_DESCRIPTION:
            _scrub_description(slide, ifd, s, rw)
        elif tag == XMP:
            _scrub_xmp(slide, ifd, s, rw)
        elif tag == NDPI_PROPERTY_MAP and slide.vendor == "hamamatsu":
            _set_or_remove(rw, ifd, tag, scrub_key_values(_str(t, ifd, tag), s, f"{place}:PropertyMap", NDPI_KEEP), s)
        elif tag in TEXT_TAGS:
            if entry.type not in TEXT_TYPES:
                continue
            value = _str(t, ifd, tag)
            _set_or_remove(rw, ifd, tag, s.scrub(place, TEXT_TAGS[tag], value), s)
        elif entry.type in TEXT_TYPES:
            # an unknown tag that can hold text: left out, its bytes zeroed
            rule = s.rule(f"tag {tag}")
            if rule is not None and rule.action == "keep":
                continue
            value = t.raw(entry)
            if value.isascii():
                s.asset.remember("text", value.split(b"\0", 1)[0].decode("ascii"))
            rw.remove(ifd, tag)
            s.asset.record("remove", f"{place}:tag {tag}", "wsi")


def _str(t: TiffStructure, ifd: Ifd, tag: int) -> str:
    return t.text(ifd, tag).decode("utf-8", "surrogateescape")


def _set_or_remove(rw: Rewrite, ifd: Ifd, tag: int, new: str, s: FieldScrubber) -> None:
    old = _str(rw.tiff, ifd, tag)
    if new == old:
        if len(rw.tiff.raw(ifd.entries[tag]).rstrip(b"\0")) > len(old.encode("utf-8", "surrogateescape")):
            # text hidden after the first NUL (an older, longer value): cut it off
            rw.set_text(ifd, tag, old.encode("utf-8", "surrogateescape"))
        return
    if not new.strip() and tag != IMAGE_DESCRIPTION:
        rw.remove(ifd, tag)
    else:
        rw.set_text(ifd, tag, new.encode("utf-8", "surrogateescape"))


def _scrub_description(slide: Slide, ifd: Ifd, s: FieldScrubber, rw: Rewrite) -> None:
    t = slide.tiff
    place = f"{ifd.describe()}:ImageDescription"
    text = _str(t, ifd, IMAGE_DESCRIPTION)
    rule = s.rule("ImageDescription")
    if rule is not None and rule.action == "keep":
        return
    vendor = slide.vendor
    if ifd.path in rw.placeholders:
        return
    if vendor == "aperio":
        new = scrub_aperio(text, s, place)
    elif vendor == "philips" and ifd.path == (0,):
        new = scrub_philips(text, s, place)
    elif vendor == "ventana" and (VENTANA_LEVEL.match(text.encode()) or text == "Thumbnail"):
        new = text
    elif vendor in ("philips", "ventana") and slide.role(ifd) in ("label", "macro"):
        # a kept label or macro: its description is how readers find it, so only the marker word stays
        marker = next((m for m in ASSOCIATED_MARKERS[vendor] if text.startswith(m)), ASSOCIATED_MARKERS[vendor][0])
        new = s.set(place, "ImageDescription", text, marker, "replace", "the reader's marker word only")
    elif vendor == "ome" and ifd.path == (0,):
        new = scrub_ome(text, slide, rw, s, place)
    else:
        new = s.scrub(place, "ImageDescription", text)
    _set_or_remove(rw, ifd, IMAGE_DESCRIPTION, new, s)
    if not new.strip() and IMAGE_DESCRIPTION in ifd.entries and ifd.path not in rw.placeholders:
        rw.remove(ifd, IMAGE_DESCRIPTION)


def _scrub_xmp(slide: Slide, ifd: Ifd, s: FieldScrubber, rw: Rewrite) -> None:
    place = f"{ifd.describe()}:XMP"
    rule = s.rule("XMP")
    if rule is not None and rule.action == "keep":
        return
    if slide.vendor != "ventana":
        value = _str(slide.tiff, ifd, XMP)
        s.asset.remember("text", value)
        rw.remove(ifd, XMP)
        s.asset.record("remove", place, "wsi")
        return
    text = _str(slide.tiff, ifd, XMP)
    new = scrub_xml(text, s, place, keep_attrs=lambda e, a: a in VENTANA_KEEP_ATTRS, keep_text=lambda k: False)
    if new != text or len(slide.tiff.raw(ifd.entries[XMP]).rstrip(b"\0")) > len(text.encode()):
        entry = ifd.entries[XMP]
        data = new.encode("utf-8", "surrogateescape")
        rw.set(ifd, XMP, Value(entry.type, len(data), data))


def scrub_philips(text: str, s: FieldScrubber, place: str) -> str:
    # label and macro photos kept as base64 JPEG inside the XML: the whole
    # DPScannedImage object goes
    out, pos = [], 0
    for m in re.finditer(r'<DataObject\s+ObjectType="DPScannedImage"\s*>', text):
        if m.start() < pos:
            continue
        end = find_element(text, m.start(), "DataObject")
        if end < 0:
            raise BadInput("Philips XML: an unclosed DPScannedImage")
        body = text[m.start():end]
        kind = re.search(r'Name="PIM_DP_IMAGE_TYPE"[^>]*>\s*(\w+)\s*<', body)
        if kind and kind.group(1) in ("LABELIMAGE", "MACROIMAGE"):
            out.append(text[pos:m.start()])
            pos = end
            s.asset.record("drop", f"{place}:{kind.group(1)}", "wsi", "base64 image in the XML")
    out.append(text[pos:])
    text = "".join(out)

    def text_key(element: str, attrs: dict[str, str]) -> str:
        return attrs.get("Name", element)

    def keep_text(key: str) -> bool:
        return key.startswith(PHILIPS_KEEP_PREFIXES)

    def derivation(m: re.Match) -> str:
        # DICOM_DERIVATION_DESCRIPTION holds the objective power and, at times, the source file name
        inner = re.sub(r'(sourceFilename=")([^"]*)(")',
                       lambda f: f.group(1) + s.scrub(place, "sourceFilename", f.group(2)) + f.group(3), m.group(2))
        return m.group(1) + inner + m.group(3)

    text = re.sub(r'(<Attribute\s+Name="DICOM_DERIVATION_DESCRIPTION"[^>]*>)([^<]*)(</Attribute>)', derivation, text)
    keep_names = ("DICOM_DERIVATION_DESCRIPTION",)
    return scrub_xml(text, s, place, keep_attrs=lambda e, a: True,
                     keep_text=lambda k: keep_text(k) or k in keep_names, text_key=text_key)


def scrub_ome(text: str, slide: Slide, rw: Rewrite, s: FieldScrubber, place: str) -> str:
    dropped = {i for i, ifd in enumerate(slide.tiff.ifds) if ifd.path in rw.dropped}
    if dropped:
        out, pos = [], 0
        for m in re.finditer(r"<Image\b[^>]*>", text):
            if m.start() < pos:
                continue
            name = re.search(r'\bName="([^"]*)"', m.group(0))
            if name and OME_ASSOCIATED.match(name.group(1)):
                end = find_element(text, m.start(), "Image")
                out.append(text[pos:m.start()])
                pos = end
        out.append(text[pos:])
        text = "".join(out)
    return scrub_xml(
        text, s, place,
        keep_attrs=lambda e, a: a in OME_KEEP_ATTRS or a.endswith("Unit") or a.startswith(("Size", "PhysicalSize")),
        keep_text=lambda k: k == "UUID",
    )


def drop_summary(outcome: Outcome) -> str:
    return ", ".join(f"{n} {role}" for role, n in sorted(outcome.dropped.items())) or "nothing"


__all__ = ["DATETIME", "Slide", "VENDORS", "assign_roles", "detect", "plan_slide"]
