"""Writing cleaned assets into the sink.

Images: the rewritten header and kept extensions, then the data block
copied from the input in chunks (never decoded) or the voxels a cleaner put
back.  ``.gz`` outputs are compressed with no name and mtime 0 in the gzip
header, so a rerun gives the same bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from medscrub import BadInput, MedscrubError, mask
from medscrub.output import safe_component
from medscrub.verification import needles

from .clean import dump_json
from .header import NiftiFile, header_bytes, open_plain
from .options import NiftiOptions
from .reader import FileData, JsonData, NiftiData, TableData, TextData

CHUNK = 16 * 1024 * 1024
REPLACED_TEXT = (
    "This dataset was de-identified with medscrub.  The original {name} was left out\n"
    "because its free text may carry protected health information.\n"
)


def _gzip_writer(raw: BinaryIO, level: int) -> gzip.GzipFile:
    # filename="" keeps the temporary file's name out of the gzip header.
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0)


def _copy_block(source: BinaryIO, target: BinaryIO, nbytes: int) -> None:
    left = nbytes
    while left > 0:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise BadInput(f"truncated image data: {nbytes - left} of {nbytes} bytes")
        target.write(chunk)
        left -= len(chunk)


def _skip(source: BinaryIO, n: int) -> None:
    if n <= 0:
        return
    if hasattr(source, "seekable") and source.seekable() and not isinstance(source, gzip.GzipFile):
        source.seek(n)
        return
    left = n
    while left > 0:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise BadInput("truncated image: the data block is missing")
        left -= len(chunk)


def check_header_leaks(block: bytes, identifiers: dict[str, set[str]], label: str) -> None:
    """The in-run leak check for bytes the core cannot see (inside gzip)."""
    for kind, value, raw, encoding in needles(identifiers):
        at = block.find(raw)
        if at >= 0:
            raise MedscrubError(
                f"leak check: {kind} in the header of {label} at byte {at} ({encoding}, {mask(value)}); output withheld"
            )


def _open_out(path: Path, gz: bool, level: int):
    raw = open(path, "wb")
    return raw, (_gzip_writer(raw, level) if gz else raw)


def write_nifti(asset, sink, options: NiftiOptions) -> None:
    data: NiftiData = asset.data
    nf: NiftiFile = data.nifti
    block, offset = header_bytes(nf)
    check_header_leaks(block, asset.identifiers, sink.relative.as_posix())
    level = options.compress_level
    if nf.single:
        _write_image(sink.path(), block, nf, level, nf.header_gz)
        return
    header_name = sink.relative.name
    header_suffix = ".hdr.gz" if nf.header_path.name.lower().endswith(".gz") else ".hdr"
    stem = header_name[: -len(header_suffix)] if header_name.lower().endswith(header_suffix) else header_name
    image_suffix = nf.image_path.name[len(nf.header_path.name) - len(header_suffix):]
    image_name = stem + image_suffix
    if safe_component(image_name) != image_name:
        raise MedscrubError(f"the image name {image_name!r} has characters the output cannot keep; "
                            "the pair would not match")
    raw, out = _open_out(sink.path(), nf.header_gz, level)
    try:
        out.write(block)
    finally:
        if out is not raw:
            out.close()
        raw.close()
    _write_image(sink.path(PurePosixPath(image_name).name), b"\0" * offset, nf, level, nf.image_gz)


def _write_image(path: Path, prefix: bytes, nf: NiftiFile, level: int, gz: bool) -> None:
    """``prefix`` (header or zero padding), then the data block."""
    raw, out = _open_out(path, gz, level)
    try:
        out.write(prefix)
        if nf.new_data is not None:
            out.write(nf.new_data)
        else:
            with open_plain(nf.image_path, nf.image_gz) as source:
                try:
                    _skip(source, nf.data_offset)
                    _copy_block(source, out, nf.data_nbytes)
                except (OSError, EOFError) as e:
                    raise BadInput(f"cannot read the image data: {e}") from None
    finally:
        if out is not raw:
            out.close()
        raw.close()


def write(asset, sink, options: NiftiOptions) -> bool:
    data = asset.data
    if isinstance(data, NiftiData):
        write_nifti(asset, sink, options)
    elif isinstance(data, JsonData):
        sink.path().write_bytes(dump_json(data.obj, indent=data.indent))
    elif isinstance(data, TableData):
        sink.path().write_bytes(data.table.render())
    elif isinstance(data, TextData):
        if data.content is not None:
            sink.path().write_bytes(data.content)
    elif isinstance(data, FileData):
        if data.gz:
            with open(sink.path(), "wb") as raw, _gzip_writer(raw, options.compress_level) as out:
                out.write(data.content)
        else:
            sink.path().write_bytes(data.content)
    else:
        return False
    return True


def replaced_text(name: str) -> bytes:
    return REPLACED_TEXT.format(name=name).encode()

