"""``medscrub verify``: the leak check of a whole output folder against its input."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .context import RunConfig, RunContext
from .manifest import Manifest
from .model import Finding, Item, MedscrubError
from .output import STATE_DIR
from .pipeline import discover
from .pseudonyms import Secret
from .verification import scan_bytes, scan_name


def _pairs(context: RunContext, output_root: Path, input_root: Path) -> list[tuple[Item, list[Path]]]:
    """(input item, its outputs), from the manifest when there is one."""
    records = Manifest(output_root).previous()
    pairs = []
    if records:
        for record in records.values():
            if record.get("status") != "done":
                continue
            members = record.get("members") or [record["id"]]
            originals = (input_root,) if input_root.is_file() else tuple(input_root / m for m in members)
            item = Item(record["id"], record["format"], originals, input_root, members=tuple(record.get("members") or ()))
            pairs.append((item, [output_root / o for o in record["output"]]))
        return pairs
    # Not made by medscrub (or its manifest was removed): pair by relative path.
    for found in discover(context):
        if isinstance(found, Item):
            output = output_root / found.id
            if output.exists():
                pairs.append((found, [output]))
    return pairs


def verify_tree(output_root: Path, input_root: Path, recipe_path: Path | None = None,
                switches: dict | None = None) -> tuple[list[Finding], int]:
    """Every finding in ``output_root``, and how many output files were checked.

    ``switches`` reach the format verifiers as ``context.cache("verify")``
    (``ocr``: "off", "flagged" or "all", ``any_text``: bool, for the plugins
    that read text in pixels) and come back with what they noted there
    (``ocr_checked``: outputs read with OCR).
    """
    if not output_root.is_dir():
        raise MedscrubError(f"{output_root} is not a folder")
    if not input_root.exists():
        raise MedscrubError(f"{input_root} does not exist")
    # Pseudonyms are not compared, only originals searched for: any secret will do.
    throwaway = Secret(secrets.token_hex(32).encode(), "verify")
    context = RunContext(RunConfig(recipe_path, throwaway, input_root, output_root))
    shared = context.cache("verify")
    shared.update(switches or {})
    hook = context.pm.hook
    findings: list[Finding] = []
    listed: set[Path] = set()
    checked = 0
    for item, outputs in _pairs(context, output_root, input_root):
        try:
            asset = hook.medscrub_read(item=item, context=context)
            if asset is None or not hook.medscrub_apply_rules(asset=asset, rules=context.rules, context=context):
                raise MedscrubError("no plugin reads it")
            identifiers = asset.identifiers
        except MedscrubError as e:
            findings.append(Finding(item.id, "input", "unverifiable", f"cannot read the original: {e}"))
            continue
        for output in outputs:
            listed.add(output.absolute())
            relative = output.relative_to(output_root).as_posix()
            if not output.exists():
                findings.append(Finding(relative, "file", "missing output"))
                continue
            checked += 1
            findings += scan_name(relative, identifiers)
            findings += scan_bytes(output, identifiers, label=relative)
            for found in hook.medscrub_verify(output=output, original=item.path, format=item.format, context=context):
                findings += [Finding(relative, f.place, f.kind, f.hint) for f in found or ()]
    for folder, dirs, files in os.walk(output_root):
        dirs[:] = [d for d in dirs if not (Path(folder) == output_root and d == STATE_DIR)]
        for name in files:
            path = (Path(folder) / name).absolute()
            if path not in listed:
                findings.append(Finding(path.relative_to(output_root).as_posix(), "file", "file not made from any input"))
    if switches is not None:
        switches.update(shared)
    return findings, checked
