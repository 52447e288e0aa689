"""``medscrub_verify`` for NIfTI images and BIDS files.

The core's check searches raw bytes, which for ``.nii.gz`` are compressed.
This verifier parses the output: header text fields and extensions
(decompressed), every JSON string, every TSV cell, text files.  It looks for

* the identifying values of the original (read and cleaned again, so values
  a site rule keeps are not reported), in the parsed text and in the name;
* with or without an original, what the profile never leaves unless a site
  rule keeps it: patient keys in sidecars, identifying TSV columns, DICOM,
  comment and other free-text extensions, non-empty header text fields.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from medscrub import BadInput, Finding, Item, MedscrubError, mask

from .clean import Table
from .header import STRUCTURAL_EXTENSIONS, TEXT_FIELDS, read_nifti
from .profile import json_default, tsv_default
from .rules import SiteRules

FORMATS = ("nifti", "bids-json", "bids-tsv", "bids-text", "bids-file")
SEARCHED_KINDS = ("name", "id", "date", "uid", "institution", "device", "address", "label", "text")


def _matcher(values: dict[str, set[str]]):
    """(kind, value, pattern) for every value worth looking for."""
    out = []
    for kind in SEARCHED_KINDS:
        for value in sorted(values.get(kind, ())):
            value = value.strip()
            if len(value) < 3:
                continue
            if len(value) >= 5:
                pattern = re.compile(re.escape(value), re.I)
            else:  # short values only as whole words
                pattern = re.compile(r"(?<![A-Za-z0-9])" + re.escape(value) + r"(?![A-Za-z0-9])", re.I)
            out.append((kind, value, pattern))
    return out


def _original_identifiers(original: Path, format: str, context) -> dict[str, set[str]]:
    from .apply import apply_rules
    from .reader import read

    root = context.input_root if context.input_root.is_dir() else original.parent
    try:
        rel = original.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        rel = original.name
    asset = read(Item(rel, format, (original.absolute(),), root), context)
    if asset is None:
        return {}
    apply_rules(asset, context.rules, context)
    return asset.identifiers


def _places(output: Path, format: str, context) -> tuple[list[tuple[str, str]], list[Finding]]:
    """(place, text) pairs of everything textual in the output, and the
    structural findings that need no original."""
    label = str(output)
    places: list[tuple[str, str]] = []
    structural: list[Finding] = []
    if format == "nifti":
        if output.name.lower().endswith((".img", ".img.gz")):
            return [], []  # voxels only; the header file says the rest
        nf = read_nifti((output,))
        site = SiteRules(context.rules, "nifti")
        for name in TEXT_FIELDS[nf.kind]:
            text = nf.text(name).replace(b"\0", b" ").decode("latin-1").strip()
            if text:
                places.append((f"header {name}", text))
                rule = site.find(name)
                if rule is None or rule.action not in ("keep", "replace", "hash", "pseudonymise"):
                    structural.append(Finding(label, f"header {name}", "text", mask(text)))
        for n, ext in enumerate(nf.extensions):
            places.append((f"extension {n} ({ext.label})", ext.text()))
            data = ext.json()
            rule = site.find_extension(ext.code, ext.label, data is not None)
            if data is not None:
                structural += _json_structure(data, label, f"extension {n} ({ext.label}): ", context)
            elif ext.code not in STRUCTURAL_EXTENSIONS and (rule is None or rule.action != "keep"):
                structural.append(Finding(label, f"extension {n} ({ext.label})", "extension not dropped"))
    elif format == "bids-json":
        data = json.loads(output.read_bytes())
        if isinstance(data, dict):
            places += list(_json_strings(data, ""))
            if output.name != "dataset_description.json" and not output.name.endswith(
                    ("participants.json", "_sessions.json", "_scans.json")):
                structural += _json_structure(data, label, "", context)
    elif format == "bids-tsv":
        table = Table.parse(output.read_bytes().decode("utf-8-sig", "replace"))
        site = SiteRules(context.rules, "bids-tsv")
        for c, column in enumerate(table.columns):
            rule = site.find(f"tsv:{column}")
            if tsv_default(column) == "remove" and (rule is None or rule.action == "remove"):
                structural.append(Finding(label, f"column {column}", "identifying column"))
            for r, row in enumerate(table.rows, start=2):
                if row[c] and row[c] != "n/a":
                    places.append((f"line {r} column {column}", row[c]))
    else:
        raw = output.read_bytes()
        if output.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
        places.append(("text", raw.decode("utf-8", "replace")))
    return places, structural


def _json_strings(obj, path: str):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _json_strings(value, f"{path}{key}" if not path else f"{path}.{key}")
    elif isinstance(obj, list):
        for n, value in enumerate(obj):
            yield from _json_strings(value, f"{path}[{n}]")
    elif obj is not None:
        yield (f"key {path}", str(obj))


def _json_structure(obj: dict, label: str, prefix: str, context) -> list[Finding]:
    """Keys the profile removes that are still there (and not kept by a site rule)."""
    site = SiteRules(context.rules, "bids-json")
    found = []

    def walk(o, path: str) -> None:
        if isinstance(o, dict):
            for key, value in o.items():
                key = str(key)
                rule = site.find(key)
                kept = rule is not None and rule.action != "remove"
                if json_default(key, value) == "remove" and not kept and value not in ("", None, [], {}):
                    found.append(Finding(label, f"{prefix}key {path}{key}", "identifying key",
                                         mask(str(value))))
                walk(value, f"{path}{key}.")
        elif isinstance(o, list):
            for v in o:
                walk(v, path)

    walk(obj, "")
    return found


def verify(output: Path, original: Path | None, format: str, context) -> list[Finding] | None:
    if format not in FORMATS:
        return None
    output = Path(output)
    label = str(output)
    try:
        places, findings = _places(output, format, context)
    except (BadInput, MedscrubError, ValueError, OSError, EOFError) as e:
        return [Finding(label, "file", "unreadable output", str(e).splitlines()[0] if str(e) else "")]
    values: dict[str, set[str]] = {}
    if original is not None and Path(original).exists():
        try:
            values = _original_identifiers(Path(original), format, context)
        except MedscrubError as e:
            return findings + [Finding(label, "original", "unverifiable", str(e))]
    matchers = _matcher(values)
    reported: set[tuple[str, str]] = set()
    for place, text in places:
        for kind, value, pattern in matchers:
            if (place, value) not in reported and pattern.search(text):
                reported.add((place, value))
                findings.append(Finding(label, place, kind, mask(value)))
    try:
        lowered = output.absolute().relative_to(Path(context.output_root).absolute()).as_posix().lower()
    except ValueError:
        lowered = output.name.lower()
    for kind, value, _ in matchers:
        if kind in ("name", "id", "label") and len(value) >= 3 and value.lower() in lowered:
            findings.append(Finding(label, "file name", kind, mask(value)))
    return findings
