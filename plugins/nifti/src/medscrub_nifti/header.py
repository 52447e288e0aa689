"""NIfTI-1, NIfTI-2 and Analyze 7.5 headers, their extensions and data blocks.

nibabel parses the fixed header; the extensions and the byte layout are read
here from the raw bytes, so that a kept extension is written back byte for
byte and the data block can be copied without decoding it.  The header is
rewritten with only the text fields and ``vox_offset`` changed: the affine,
qform, sform, their codes, scaling and everything else stay bit-identical.
"""

from __future__ import annotations

import gzip
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nibabel.analyze import AnalyzeHeader
from nibabel.nifti1 import Nifti1Header, extension_codes
from nibabel.nifti2 import Nifti2Header

from medscrub import BadInput

GZIP_MAGIC = b"\x1f\x8b"
# The most header and extension bytes read before the data; more is a damaged file.
MAX_HEADER_BYTES = 64 * 1024 * 1024

# Text fields that can carry PHI, per header kind, with their sizes in bytes.
TEXT_FIELDS: dict[str, dict[str, int]] = {
    "nifti1": {"data_type": 10, "db_name": 18, "descrip": 80, "aux_file": 24, "intent_name": 16},
    "nifti2": {"descrip": 80, "aux_file": 24, "intent_name": 16, "unused_str": 15},
    "analyze": {
        "data_type": 10, "db_name": 18, "descrip": 80, "aux_file": 24, "generated": 10,
        "scannum": 10, "patient_id": 10, "exp_date": 10, "exp_time": 10, "hist_un0": 3,
    },
}
ALL_TEXT_FIELDS: dict[str, int] = {}
for _fields in TEXT_FIELDS.values():
    for _name, _size in _fields.items():
        ALL_TEXT_FIELDS[_name] = min(_size, ALL_TEXT_FIELDS.get(_name, _size))

# Extension codes whose content is numbers or structure, kept by default.
STRUCTURAL_EXTENSIONS = {18, 20, 22, 24, 26, 32, 34}


def extension_label(code: int) -> str:
    try:
        return str(extension_codes.label[code])
    except KeyError:
        return str(code)


@dataclass
class Extension:
    code: int
    content: bytes  # without the 8-byte esize/ecode prefix, padding included

    @property
    def label(self) -> str:
        return extension_label(self.code)

    def json(self) -> dict | None:
        """The content as a JSON object, or None when it is not one."""
        text = self.content.rstrip(b"\0").strip()
        if not text.startswith(b"{"):
            return None
        try:
            value = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def text(self) -> str:
        raw = self.content.rstrip(b"\0")
        for encoding in ("utf-8", "latin-1"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
        return ""


@dataclass
class NiftiFile:
    """What the writer needs of one image: header, extensions, where the data is."""

    kind: str  # nifti1 | nifti2 | analyze
    header: AnalyzeHeader  # a nibabel header (Nifti1Header, Nifti2Header or AnalyzeHeader)
    header_path: Path
    image_path: Path  # the same file for a single .nii
    header_gz: bool
    image_gz: bool
    extensions: list[Extension] = field(default_factory=list)
    data_offset: int = 0  # in the (decompressed) image file
    data_nbytes: int = 0
    new_data: bytes | None = None  # voxels a cleaner put back, in the file's dtype and byte order

    @property
    def single(self) -> bool:
        return self.header_path == self.image_path

    @property
    def endianness(self) -> str:
        return self.header.endianness

    def text(self, name: str) -> bytes:
        """A text field's raw bytes up to the last non-NUL byte (NULs inside kept)."""
        return bytes(self.header[name][()])

    def visible(self, name: str) -> bytes:
        """A text field as a reader shows it: up to the first NUL."""
        return self.text(name).split(b"\0", 1)[0]


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_plain(path: Path, gz: bool) -> BinaryIO:
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise BadInput(f"truncated {what}: expected {n} bytes, found {len(data)}")
    return data


def sniff(head: bytes) -> tuple[str, str] | None:
    """(kind, endianness) of a header from its first bytes, or None."""
    if len(head) < 348:
        return None
    for endian in ("<", ">"):
        size = struct.unpack(endian + "i", head[:4])[0]
        if size == 348:
            kind = "nifti1" if head[344:347] in (b"n+1", b"ni1") else "analyze"
            return kind, endian
        if size == 540 and len(head) >= 540 and head[4:7] in (b"n+2", b"ni2"):
            return "nifti2", endian
    return None


def header_class(kind: str) -> type[AnalyzeHeader]:
    return {"nifti1": Nifti1Header, "nifti2": Nifti2Header, "analyze": AnalyzeHeader}[kind]


def header_size(kind: str) -> int:
    return 540 if kind == "nifti2" else 348


def _parse_extensions(raw: bytes, endian: str) -> list[Extension]:
    """Extensions from the bytes after the fixed header (extender first)."""
    if len(raw) < 4 or raw[0] == 0:
        return []
    exts = []
    pos = 4
    while pos + 8 <= len(raw):
        esize, ecode = struct.unpack(endian + "ii", raw[pos:pos + 8])
        if esize == 0 and ecode == 0:
            break  # zero padding up to vox_offset
        if esize < 8 or pos + esize > len(raw):
            raise BadInput(f"damaged header extension at byte {pos}: size {esize}")
        exts.append(Extension(ecode, raw[pos + 8:pos + esize]))
        pos += esize
    return exts


def image_path_for(header_path: Path) -> Path | None:
    """The ``.img`` (or ``.img.gz``) that goes with an Analyze-style ``.hdr``."""
    name = header_path.name
    for suffix, partners in ((".hdr.gz", (".img.gz",)), (".hdr", (".img", ".img.gz"))):
        if name.lower().endswith(suffix):
            stem = name[: -len(suffix)]
            for partner in partners:
                for candidate in (partner, partner.upper()):
                    path = header_path.with_name(stem + candidate)
                    if path.is_file():
                        return path
    return None


def read_nifti(paths: tuple[Path, ...]) -> NiftiFile:
    """Parse the header, extensions and data layout of an image."""
    header_path = paths[0]
    lower = header_path.name.lower()
    if lower.endswith((".img", ".img.gz")):
        raise BadInput("an Analyze .img without its .hdr header")
    header_gz = is_gzip(header_path)
    with open_plain(header_path, header_gz) as f:
        try:
            head = f.read(540)
        except (OSError, EOFError) as e:
            raise BadInput(f"cannot decompress: {e}") from None
        found = sniff(head)
        if found is None:
            raise BadInput("not a NIfTI or Analyze file (no valid sizeof_hdr)")
        kind, endian = found
        size = header_size(kind)
        header = header_class(kind)(binaryblock=head[:size], endianness=endian, check=False)
        single = (kind == "nifti1" and head[344:347] == b"n+1") or (kind == "nifti2" and head[4:7] == b"n+2")
        if single and lower.endswith((".hdr", ".hdr.gz")):
            raise BadInput("a single-file NIfTI header in a .hdr file")
        if not single and lower.endswith((".nii", ".nii.gz")):
            if kind == "analyze":
                raise BadInput("an Analyze header in a .nii file (no NIfTI magic)")
            raise BadInput("a NIfTI pair header in a .nii file")
        vox_offset = int(header["vox_offset"])
        if single:
            if vox_offset == 0:
                vox_offset = size + 4  # some writers leave it unset; nibabel reads the same
            if vox_offset < size:
                raise BadInput(f"vox_offset {vox_offset} lies inside the header")
            if vox_offset > MAX_HEADER_BYTES:
                raise BadInput(f"vox_offset {vox_offset} is implausibly large")
            rest = head[size:] + _read_exact(f, max(0, vox_offset - len(head)), "header extensions")
            rest = rest[: vox_offset - size]
        else:
            rest = head[size:] + f.read(MAX_HEADER_BYTES)
    if kind == "analyze":
        extensions: list[Extension] = []
    else:
        extensions = _parse_extensions(rest, endian)
    if single:
        image_path, image_gz = header_path, header_gz
    else:
        found_image = image_path_for(header_path) if len(paths) < 2 else paths[1]
        if found_image is None:
            raise BadInput("an Analyze/NIfTI pair header without its .img file")
        image_path, image_gz = found_image, is_gzip(found_image)
        vox_offset = max(vox_offset, 0)
    try:
        shape = header.get_data_shape()
        itemsize = header.get_data_dtype().itemsize
    except Exception as e:  # nibabel raises several kinds for a bad datatype or dim
        raise BadInput(f"unreadable image dimensions or datatype: {e}") from None
    nbytes = itemsize
    for n in shape:
        nbytes *= int(n)
    nf = NiftiFile(kind, header, header_path, image_path, header_gz, image_gz, extensions, vox_offset, nbytes)
    if not image_gz and image_path.stat().st_size < vox_offset + nbytes:
        raise BadInput(f"truncated image data: {image_path.stat().st_size} bytes, need {vox_offset + nbytes}")
    return nf


def _align(n: int, to: int = 16) -> int:
    return (n + to - 1) // to * to


def extension_block(nf: NiftiFile) -> bytes:
    """The extender and the extensions as they will be written."""
    if nf.kind == "analyze":
        return b""
    if not nf.extensions:
        return b"\0\0\0\0"
    parts = [b"\x01\0\0\0"]
    for ext in nf.extensions:
        parts.append(struct.pack(nf.endianness + "ii", 8 + len(ext.content), ext.code) + ext.content)
    return b"".join(parts)


def padded_content(text: bytes) -> bytes:
    """Extension content padded with NULs so that the extension's size is a multiple of 16."""
    return text + b"\0" * (_align(len(text) + 8) - 8 - len(text))


def header_bytes(nf: NiftiFile) -> tuple[bytes, int]:
    """The header, extender and extensions to write, and the data offset in the image file.

    Only ``vox_offset`` is recomputed, for a single file whose extensions
    changed; nothing between the extensions and the data survives.
    """
    exts = extension_block(nf)
    header = nf.header.copy()
    size = header_size(nf.kind)
    if nf.single:
        offset = _align(size + len(exts))
        header["vox_offset"] = offset
        block = header.binaryblock + exts
        return block + b"\0" * (offset - len(block)), offset
    return header.binaryblock + exts, nf.data_offset
