"""Claiming and reading: which files are ours and what each asset holds.

Formats:

* ``nifti``: ``.nii``, ``.nii.gz``, and ``.hdr`` (``.hdr.gz``) with its ``.img``;
* ``bids-json``: a ``.json`` in a BIDS dataset or next to an image;
* ``bids-tsv``: a ``.tsv`` in a BIDS dataset, and ``participants.tsv``,
  ``*_sessions.tsv``, ``*_scans.tsv`` anywhere;
* ``bids-text``: README, CHANGES, LICENSE and ``.bidsignore`` at a BIDS root;
* ``bids-file``: ``.bval``, ``.bvec`` and ``.tsv.gz`` (physiology) of a
  dataset, copied once their content is checked to be numbers only.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from medscrub import Asset, BadInput, Claim

from .clean import Table, column_kind, remember_json
from .header import NiftiFile, image_path_for, read_nifti, sniff
from .identifiers import dicom_values, remember
from .layout import ENTITY, IMAGE_SUFFIXES, Layout, layout_for, strip_suffix
from .profile import tsv_default

TEXT_NAMES = re.compile(r"^(README(\.(md|txt|rst))?|CHANGES|LICENSE|\.bidsignore)$", re.I)
FREE_TEXT_NAMES = re.compile(r"^(README(\.(md|txt|rst))?|CHANGES)$", re.I)
NUMERIC_SUFFIXES = (".bval", ".bvec", ".tsv.gz")
MAX_TEXT_BYTES = 64 * 1024 * 1024


@dataclass
class NiftiData:
    nifti: NiftiFile
    modality: str = ""
    volume: object = None  # the last volume a cleaner put back (numpy array, scaled)


@dataclass
class JsonData:
    obj: dict
    indent: str | int | None = 4
    kind: str = "sidecar"  # sidecar | description | columns (participants.json and the like)


@dataclass
class TableData:
    table: Table


@dataclass
class TextData:
    content: bytes | None  # None: left out of the output
    free_text: bool = False


@dataclass
class FileData:
    content: bytes
    gz: bool = False
    extra: dict = field(default_factory=dict)


# -- claiming ------------------------------------------------------------------


def _lower(path: Path) -> str:
    return path.name.lower()


def _has_image(path: Path) -> bool:
    stem, _ = strip_suffix(path.name)
    return any(path.with_name(stem + suffix).is_file() for suffix in IMAGE_SUFFIXES[:4])


def _analyze_header(path: Path) -> bool:
    try:
        with (gzip.open(path, "rb") if _lower(path).endswith(".gz") else open(path, "rb")) as f:
            return sniff(f.read(540)) is not None
    except (OSError, EOFError):
        return False


def claim(path: Path, context) -> Claim | None:
    if not path.is_file():
        return None
    name = _lower(path)
    if name.endswith((".nii", ".nii.gz")):
        return Claim("nifti", (path,))
    if name.endswith((".hdr", ".hdr.gz")):
        if not _analyze_header(path):
            return None
        image = image_path_for(path)
        return Claim("nifti", (path, image) if image is not None else (path,))
    if name.endswith((".img", ".img.gz")):
        # The .hdr sorts first and takes its .img along; a lone one is a damaged pair.
        stem = path.name[: -len(".img.gz" if name.endswith(".gz") else ".img")]
        headers = [path.with_name(stem + s) for s in (".hdr", ".HDR", ".hdr.gz")]
        return Claim("nifti", (path,)) if any(h.is_file() for h in headers) else None
    layout = layout_for(context)
    root = layout.root_of(path)
    if name.endswith(".json"):
        if root is not None or _has_image(path):
            return Claim("bids-json", (path,))
        return None
    if name.endswith(".tsv"):
        if root is not None or name == "participants.tsv" or name.endswith(("_sessions.tsv", "_scans.tsv")):
            return Claim("bids-tsv", (path,))
        return None
    if name.endswith((".bval", ".bvec")) and _has_image(path):
        return Claim("bids-file", (path,))
    if root is None:
        return None
    if path.parent == root and TEXT_NAMES.match(path.name):
        return Claim("bids-text", (path,))
    if name.endswith(NUMERIC_SUFFIXES):
        return Claim("bids-file", (path,))
    return None


# -- reading -------------------------------------------------------------------------


def modality_of(path: Path) -> str:
    """MR, CT, PT or "" from the BIDS suffix or the sidecar's Modality."""
    stem, _ = strip_suffix(path.name)
    sidecar = path.with_name(stem + ".json")
    if sidecar.is_file():
        try:
            value = json.loads(sidecar.read_bytes()).get("Modality")
            if isinstance(value, str) and value.strip():
                return value.strip().upper()
        except (OSError, ValueError, AttributeError):
            pass
    suffix = stem.rsplit("_", 1)[-1].lower()
    if suffix == "ct":
        return "CT"
    if suffix == "pet":
        return "PT"
    if suffix in {"t1w", "t2w", "pdw", "t2starw", "flair", "inplanet1", "inplanet2", "pd", "angio", "bold", "dwi",
                  "sbref", "epi", "phasediff", "magnitude", "magnitude1", "magnitude2", "phase1", "phase2",
                  "fieldmap", "unloc", "mp2rage", "megre", "mese", "t1map", "t2map", "unit1", "asl", "m0scan",
                  "cbv", "phase"}:
        return "MR"
    return ""


def read(item, context) -> Asset | None:
    format = item.format
    path = item.path
    layout = layout_for(context)
    if format == "nifti":
        nf = read_nifti(item.paths)
        asset = Asset(item, format, NiftiData(nf, modality_of(path)))
        _remember_nifti(asset, nf, context)
    elif format == "bids-json":
        raw = _read_limited(path)
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadInput(f"not valid JSON: {e}") from None
        if not isinstance(obj, dict):
            raise BadInput("a BIDS JSON file must hold an object")
        kind = "description" if path.name == "dataset_description.json" else "sidecar"
        if path.name in ("participants.json",) or path.name.endswith(("_sessions.json", "_scans.json")) \
                or path.name in ("sessions.json", "scans.json"):
            kind = "columns"
        asset = Asset(item, format, JsonData(obj, _indent(raw), kind))
        if kind == "sidecar":
            remember_json(asset, obj, context.date_policy)
    elif format == "bids-tsv":
        raw = _read_limited(path)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadInput("a TSV file must be UTF-8") from None
        table = Table.parse(text)
        asset = Asset(item, format, TableData(table))
        from .clean import remember_table
        from .rules import SiteRules

        remember_table(asset, table, SiteRules(context.rules, "bids-tsv"), context.date_policy)
    elif format == "bids-text":
        raw = _read_limited(path)
        free = bool(FREE_TEXT_NAMES.match(path.name))
        asset = Asset(item, format, TextData(raw, free))
        if not free or layout.options.text_files == "keep":
            for kind, value in dataset_identifiers(layout, layout.root_of(path) or path.parent, context.date_policy):
                remember(asset, kind, value)
    elif format == "bids-file":
        asset = Asset(item, format, _read_numeric(path))
    else:
        return None
    layout.remember_labels(asset, path)
    if layout.relabel_subjects and format in ("bids-json", "bids-tsv", "bids-text") and layout.root_of(path):
        for m in ENTITY.finditer(raw.decode("utf-8", "replace")):
            if m.group(1) == "sub":
                asset.remember("label", m.group(0))
    return asset


def _read_limited(path: Path) -> bytes:
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise BadInput(f"larger than {MAX_TEXT_BYTES // 2**20} MiB; not a sidecar or table")
    return path.read_bytes()


def _indent(raw: bytes) -> str | int | None:
    m = re.search(rb"\n([ \t]+)\S", raw)
    if not m:
        return None if b"\n" not in raw.strip() else 4
    ws = m.group(1).decode()
    return "\t" if ws.startswith("\t") else len(ws)


def _remember_nifti(asset: Asset, nf: NiftiFile, context) -> None:
    for name in ("descrip", "aux_file", "intent_name", "db_name", "data_type", "unused_str", "generated", "scannum"):
        if name in nf.header:
            value = nf.text(name).replace(b"\0", b" ").decode("latin-1").strip()
            if value:
                asset.remember("text", value)
    if nf.kind == "analyze":
        for name, kind in (("patient_id", "id"), ("exp_date", "text"), ("exp_time", "text")):
            value = nf.visible(name).decode("latin-1").strip()
            if value:
                remember(asset, kind, value)
    for ext in nf.extensions:
        data = ext.json()
        if data is not None:
            remember_json(asset, data, context.date_policy)
        elif ext.code == 2:
            for kind, value in dicom_values(ext.content):
                if kind == "date" and context.date_policy == "keep":
                    continue
                remember(asset, kind, value)
        elif ext.code == 6:
            text = ext.text().strip()
            if text:
                asset.remember("text", text)


def _read_numeric(path: Path) -> FileData:
    """A .bval/.bvec/.tsv.gz holds numbers only; anything else is not copied."""
    gz = path.name.lower().endswith(".gz")
    try:
        content = gzip.decompress(_read_limited(path)) if gz else _read_limited(path)
    except (OSError, EOFError) as e:
        raise BadInput(f"cannot decompress: {e}") from None
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        raise BadInput("holds non-ASCII bytes; only numbers are copied") from None
    for token in text.split():
        if token.lower() in ("n/a", "nan", "inf", "-inf"):
            continue
        try:
            float(token)
        except ValueError:
            raise BadInput("holds text, not only numbers; not copied (it may carry PHI)") from None
    return FileData(content, gz)


def dataset_identifiers(layout: Layout, root: Path, policy: str) -> list[tuple[str, str]]:
    """The identifying values anywhere in a dataset's sidecars and
    participants.tsv: what a kept free-text file must not mention."""
    found: list[tuple[str, str]] = []
    for sidecar in sorted(root.rglob("*.json")):
        try:
            raw = sidecar.read_bytes()
        except OSError:
            continue
        if b'"Patient' not in raw and b'"Institution' not in raw:
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        probe = Asset(None, "bids-json", None)  # type: ignore[arg-type]
        remember_json(probe, obj if isinstance(obj, dict) else {}, policy)
        found += [(k, v) for k, values in probe.identifiers.items() for v in values]
    participants = root / "participants.tsv"
    if participants.is_file():
        try:
            table = Table.parse(participants.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError):
            table = Table([], [])
        for c, column in enumerate(table.columns):
            if tsv_default(column) == "remove":
                found += [(column_kind(column), row[c]) for row in table.rows if row[c] not in ("", "n/a")]
    return found
