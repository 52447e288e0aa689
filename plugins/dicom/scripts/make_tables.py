"""Generate the plugin's profile table from the PS3.15 tables in ``standard/``.

    python plugins/dicom/scripts/make_tables.py [--source DIR] [--check]

Reads Table E.1-1 (``e1_1.json``) and Table E.3.10-1 (``e3_10_1.json``),
checks each file's ``content_sha256``, and writes
``src/medscrub_dicom/data/ps3.15-2026d.json``: one compact object that the
plugin compiles into integer-keyed lookups when it loads.  ``--check`` only
compares a fresh generation with the committed file (exit status 1 when they
differ).  The NEMA notice is copied next to the generated table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1]
SOURCE = PLUGIN / "standard"
DATA = PLUGIN / "src" / "medscrub_dicom" / "data"
OUTPUT_NAME = "ps3.15-2026d.json"
NOTICE_NAME = "NOTICE-NEMA-DICOM"

_TAG = re.compile(r"\(([0-9A-Fa-fx]{4}),([0-9A-Fa-fx]{4})\)")
_PRIVATE_ROW = "(gggg,eeee) where gggg is odd"


def _load(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    digest = hashlib.sha256(json.dumps(doc["rows"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    if digest != doc["content_sha256"]:
        raise SystemExit(f"{path}: content_sha256 does not match its rows; the copy is damaged")
    return doc


def _mask(tag: str) -> tuple[str, str]:
    """(mask, value) as 8 hex digits each, for a tag with ``x`` wildcards."""
    m = _TAG.fullmatch(tag)
    if not m:
        raise SystemExit(f"cannot read the tag {tag!r}")
    digits = (m.group(1) + m.group(2)).upper()
    mask = "".join("0" if c == "X" else "F" for c in digits)
    value = digits.replace("X", "0")
    return mask, value


def build(source: Path) -> dict:
    e1 = _load(source / "e1_1.json")
    e3 = _load(source / "e3_10_1.json")
    if e1["edition"] != e3["edition"]:
        raise SystemExit("the two tables come from different editions")
    rows: dict[str, list] = {}
    patterns: list[dict] = []
    private = None
    for row in e1["rows"]:
        entry = [row["basic_profile"], dict(sorted(row["options"].items())), row["name"]]
        tag = row["tag"]
        if tag == _PRIVATE_ROW:
            private = entry
        elif "x" in tag.lower():
            mask, value = _mask(tag)
            patterns.append({"tag": tag, "mask": mask, "value": value, "row": entry})
        else:
            mask, value = _mask(tag)
            if value in rows:
                raise SystemExit(f"{tag} appears twice in Table E.1-1")
            rows[value] = entry
    if private is None:
        raise SystemExit("Table E.1-1 has no private attributes row")
    safe: list[list[str]] = []
    for row in e3["rows"]:
        m = _TAG.fullmatch(row["tag"])
        if not m or not m.group(2).lower().startswith("xx"):
            raise SystemExit(f"unexpected safe private tag {row['tag']!r}")
        group, offset = m.group(1).upper(), m.group(2)[2:].upper()
        if int(group, 16) % 2 == 0:
            raise SystemExit(f"safe private tag {row['tag']!r} is not in an odd group")
        safe.append([row["private_creator"].strip(), group, offset, row["vr"]])
    safe = sorted({tuple(s): s for s in safe}.values())
    return {
        "edition": e1["edition"],
        "acknowledgement": e1["acknowledgement"],
        "notice": NOTICE_NAME,
        "sources": {
            "e1_1": {"table": e1["table"], "content_sha256": e1["content_sha256"]},
            "e3_10_1": {"table": e3["table"], "content_sha256": e3["content_sha256"]},
        },
        "row_format": ["basic_profile", "option_overrides", "name"],
        "rows": dict(sorted(rows.items())),
        "patterns": sorted(patterns, key=lambda p: p["value"]),
        "private": private,
        "safe_private_format": ["private_creator", "group", "element_offset", "vr"],
        "safe_private": safe,
    }


def render(table: dict) -> str:
    # One row per line: compact, yet a diff of a new edition stays readable.
    lines = ["{"]
    head = {k: v for k, v in table.items() if k not in ("rows", "patterns", "safe_private")}
    for key, value in head.items():
        lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('"rows": {')
    items = list(table["rows"].items())
    for i, (tag, row) in enumerate(items):
        lines.append(f"{json.dumps(tag)}: {json.dumps(row, ensure_ascii=False)}" + ("," if i < len(items) - 1 else ""))
    lines.append("},")
    lines.append('"patterns": [')
    for i, p in enumerate(table["patterns"]):
        lines.append(json.dumps(p, ensure_ascii=False) + ("," if i < len(table["patterns"]) - 1 else ""))
    lines.append("],")
    lines.append('"safe_private": [')
    for i, s in enumerate(table["safe_private"]):
        lines.append(json.dumps(s, ensure_ascii=False) + ("," if i < len(table["safe_private"]) - 1 else ""))
    lines.append("]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="folder with e1_1.json and e3_10_1.json")
    parser.add_argument("--output", type=Path, default=DATA, help="the package data folder")
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args(argv)
    text = render(build(args.source))
    target = args.output / OUTPUT_NAME
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        notice_ok = (args.output / NOTICE_NAME).read_bytes() == (args.source / "LICENSE-NEMA-DICOM").read_bytes()
        if current != text or not notice_ok:
            print(f"{target} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    shutil.copyfile(args.source / "LICENSE-NEMA-DICOM", args.output / NOTICE_NAME)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
