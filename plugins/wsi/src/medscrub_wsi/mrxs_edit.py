"""De-identifying an MRXS slide: what the read, rules and write hooks do.

The output is a new ``.mrxs`` file and data folder:

* ``Slidedat.ini`` is rewritten field by field (:func:`scrub_slidedat`):
  ``SLIDE_NAME`` becomes the slide pseudonym, ``SLIDE_ID`` a keyed value of
  the same length, every other field goes through the slide field scrubber
  (names, IDs, serials emptied, dates by the date policy, numbers kept); the
  structure (``[HIERARCHICAL]``, ``[DATAFILE]``, image formats) stays;
* the label, macro, preview and whole-slide photo records are taken out of
  ``[HIERARCHICAL]`` (the VALs and layers after them renumbered, their
  sections dropped) and out of the index's record table (later pointers
  moved up, the freed slot and the records' pages zeroed), or the label
  record is pointed at a generated label (``label = "replace"``);
* the index and the data files are copied by :func:`medscrub_wsi.edit.apply`
  (in the kernel, never the slide in memory) with their ``SLIDE_ID`` replaced
  in place; in a data file only the header and the bytes a kept record points
  to are live, so removed images, the header padding and any slack are zeros.
"""

from __future__ import annotations

import io
import re
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from medscrub import Asset, BadInput, Finding, Item, MedscrubError
from medscrub.output import safe_relative

from .edit import Plan, _check_patches, _pixel_ranges, apply, merge_intervals
from .label import render_label
from .macro import MAX_BYTES, LabelArea, encode_picture, find_label, is_blanked, paint
from .mrxs import SLIDEDAT, VERSION_LENGTH, Ini, MrxsSlide, Record, associated_role, open_slide, read_head, slide_paths
from .options import WsiOptions
from .previews import Pictures, card
from .reader import LABEL_MAX_SIDE, make_scrubber, remember_file_name
from .scrub import FieldScrubber

VENDOR = "mirax"
# Groups that are the slide's structure: layer names, section names, file names.
STRUCTURE_GROUPS = {"HIERARCHICAL", "DATAFILE"}
# Fields whose text is harmless and that readers need (numbers are kept anyway).
KEEP_KEYS = {"SLIDE_VERSION", "CURRENT_SLIDE_VERSION", "SLIDE_TYPE", "IMAGE_FORMAT"}
KEEP_KEY = re.compile(r"_IMAGE_TYPE$|_FORMAT$|_FORMAT_VERSION$|_VERSION$")
SLIDE_PSEUDONYM = re.compile(r"^S[A-Z2-7]{12}$")
INT32_MAX = 2**31 - 1


@dataclass
class MrxsData:
    """``asset.data`` of an MRXS slide."""

    slide: MrxsSlide
    name: str  # the input .mrxs file name
    pseudonym: str
    ini: bytes | None = None  # the new Slidedat.ini
    index: Plan | None = None
    data: list[Plan] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # role -> records left out
    replaced_label: bool = False

    @property
    def vendor(self) -> str:
        return VENDOR


def is_mrxs_item(item: Item) -> bool:
    return any(slide_paths(p) is not None for p in item.paths)


def read_mrxs(item: Item, context) -> Asset:
    found = next((paths for p in item.paths if (paths := slide_paths(p)) is not None), None)
    if found is None:
        raise BadInput("not an MRXS slide")
    mrxs, folder = found
    try:
        slide = open_slide(mrxs, folder)
    except OSError as e:
        raise BadInput(f"cannot read the slide: {e.strerror or e}") from None
    pseudonym = context.pseudonyms.pseudonym("slide", mrxs.name, prefix="S")
    asset = Asset(item, "wsi", MrxsData(slide, mrxs.name, pseudonym))
    remember_file_name(asset, mrxs.name)
    return asset


# -- Slidedat.ini ---------------------------------------------------------------------


def scrub_slidedat(ini: Ini, s: FieldScrubber, new_id: str | None, pseudonym: str | None) -> None:
    """Every field of ``ini`` through ``s``.  ``SLIDE_ID`` becomes ``new_id``
    and ``SLIDE_NAME`` ``pseudonym`` (unless a rule says otherwise); either
    None leaves that field alone (the verifier's second pass)."""
    for line in ini.fields():
        key, value = line.key or "", line.value
        place = f"Slidedat.ini:[{line.group}]"
        rule = s.rule(key)
        if line.group == "GENERAL" and key == "SLIDE_ID":
            if new_id is not None:
                line.with_value(s.set(place, key, value, new_id, "replace", "a keyed value of the same length"))
            continue
        if line.group == "GENERAL" and key == "SLIDE_NAME" and rule is None:
            if pseudonym is not None and value.strip():
                line.with_value(s.set(place, key, value, pseudonym, "pseudonymise"))
            continue
        keep = line.group in STRUCTURE_GROUPS or key in KEEP_KEYS or bool(KEEP_KEY.search(key))
        new = s.scrub(place, key, value, keep=keep)
        if new != value:
            line.with_value(new)
    for line in ini.dropped:
        s.asset.remember("text", line.text.strip())
        s.asset.record("remove", f"Slidedat.ini:[{line.group}] comment or stray line", "wsi")
    ini.dropped = []


def same_length_id(context, old: str) -> str:
    """A keyed replacement for ``SLIDE_ID`` with as many bytes: hex digits
    where the old one has letters, digits or non-ASCII bytes, its other
    characters (dashes, braces) kept."""
    raw = old.encode("utf-8", "surrogateescape")
    digits = ""
    while len(digits) < len(raw):
        digits += context.pseudonyms.hash("wsi:SLIDE_ID", f"{len(digits)}:{old}", length=64)
    lower = any(c.islower() for c in old)
    out = []
    for i, byte in enumerate(raw):
        char = chr(byte)
        if byte < 128 and not char.isalnum():
            out.append(char)
        else:
            out.append(digits[i] if lower else digits[i].upper())
    new = "".join(out)
    context.pseudonyms.note("wsi:SLIDE_ID", old, new)
    return new


_NONHIER_VAL = re.compile(r"^NONHIER_(\d+)_VAL_(\d+)(_.*)?$")
_NONHIER_LAYER = re.compile(r"^NONHIER_(\d+)_(.+)$")


def remove_records(ini: Ini, slide: MrxsSlide, drop: set[int]) -> None:
    """Take the non-hierarchical records numbered ``drop`` out of
    ``[HIERARCHICAL]``: later VALs and layers move up, a layer left empty
    goes, and so do the sections no remaining key names."""
    group = "HIERARCHICAL"
    new_layer: dict[int, int] = {}
    new_val: dict[tuple[int, int], int] = {}
    counts: dict[int, int] = {}
    orphans: set[str] = set()
    flat = 0
    for i in range(ini.integer(group, "NONHIER_COUNT", 0)):
        kept = 0
        for j in range(ini.integer(group, f"NONHIER_{i}_COUNT", 1)):
            if flat in drop:
                section = slide.nonhier[flat].section
                if section:
                    orphans.add(section)
            else:
                new_val[(i, j)] = kept
                kept += 1
            flat += 1
        if kept:
            new_layer[i], counts[i] = len(new_layer), kept
        else:
            orphans.add((ini.get(group, f"NONHIER_{i}_SECTION") or "").strip())
    lines = []
    for line in ini.lines:
        key = line.key
        if line.group == group and key:
            if key == "NONHIER_COUNT":
                line.with_value(str(len(new_layer)))
            elif m := _NONHIER_VAL.match(key):
                i, j = int(m.group(1)), int(m.group(2))
                if i not in new_layer or (i, j) not in new_val:
                    continue
                line.with_key(f"NONHIER_{new_layer[i]}_VAL_{new_val[(i, j)]}{m.group(3) or ''}")
            elif m := _NONHIER_LAYER.match(key):
                i, rest = int(m.group(1)), m.group(2)
                if i not in new_layer:
                    continue
                line.with_key(f"NONHIER_{new_layer[i]}_{rest}")
                if rest == "COUNT":
                    line.with_value(str(counts[i]))
        lines.append(line)
    ini.lines = lines
    named = {line.value.strip() for line in ini.fields() if line.group == group}
    for section in orphans - named - {""}:
        ini.drop_group(section)


# -- the index and the data files -----------------------------------------------------


def _record_pointer(record: Record) -> int:
    return record.pages[0][0] if record.pages else 0


def _overlaps(starts: np.ndarray, ends: np.ndarray, a: int, b: int) -> bool:
    """Whether [a, b) meets one of the merged intervals."""
    k = int(np.searchsorted(ends, a, side="right"))
    return k < len(starts) and int(starts[k]) < b


def index_plan(slide: MrxsSlide, new_id: bytes, drop: set[int],
               placed: list[tuple[int, int, int]]) -> Plan:
    """The index copied with its SLIDE_ID replaced, the dropped records out
    of the table and their pages zeroed; each of ``placed`` = (entry offset,
    new data offset, new length) points a record at its new image."""
    patches: list[tuple[int, bytes]] = [(VERSION_LENGTH, new_id)]
    if drop:
        pointers = [_record_pointer(r) for r in slide.nonhier if r.number not in drop]
        pointers += [0] * (len(slide.nonhier) - len(pointers))
        patches.append((slide.nonhier_table, struct.pack(f"<{len(pointers)}i", *pointers)))
        kept_records = [*slide.hier, *(r for r in slide.nonhier if r.number not in drop)]
        kept = [page for record in kept_records for page in record.pages]
        starts, ends = merge_intervals(np.array([a for a, _ in kept], np.int64),
                                       np.array([a + n for a, n in kept], np.int64))
        for record in slide.nonhier:
            if record.number in drop:
                for at, n in record.pages:
                    if not _overlaps(starts, ends, at, at + n):  # a page shared with a kept record stays
                        patches.append((at, bytes(n)))
    for entry, offset, length in placed:
        patches.append((entry + 8, struct.pack("<ii", offset, length)))
    size = slide.index_size
    return Plan(size, _check_patches(patches), np.array([0], np.int64), np.array([size], np.int64))


def _new_header_id(slide: MrxsSlide, number: int, new_id: bytes) -> bytes:
    """The new SLIDE_ID in the form this data file's header uses: bytes as in
    the INI, or (newer slides) UTF-16LE cut to the same length."""
    n = len(slide.id_bytes)
    found = read_head(slide.data_path(number), VERSION_LENGTH, n)
    if found == slide.slide_id.encode("utf-16-le", "surrogatepass")[:n]:
        return new_id.decode("utf-8", "surrogateescape").encode("utf-16-le", "surrogatepass")[:n]
    return new_id


def data_plans(slide: MrxsSlide, new_id: bytes, drop: set[int], replaced: list[tuple[Record, bytes]],
               ) -> tuple[list[Plan], list[tuple[int, int, int]]]:
    """One plan per data file; and where each replaced record's new image
    went (entry offset in the index, data offset, length)."""
    new_images = {id(record) for record, _ in replaced}
    files = len(slide.data_names)
    live: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(files)]
    tiles: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(files)]
    gone: list[tuple[int, int, int]] = []  # (file, start, end) of dropped or replaced images
    for record in (*slide.hier, *slide.nonhier):
        dropped = record.table == "nonhier" and (record.number in drop or id(record) in new_images)
        for number in np.unique(record.files).tolist():
            mine = record.files == number
            starts, ends = record.offsets[mine], record.offsets[mine] + record.lengths[mine]
            if dropped:
                gone += [(number, a, b) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
            else:
                live[number].append((starts, ends))
                if record.table == "hier":  # image data: never text
                    tiles[number].append((starts, ends))
    header = slide.data_header
    plans: list[Plan] = []
    for number in range(files):
        starts = np.concatenate([np.array([0], np.int64), *[a for a, _ in live[number]]])
        ends = np.concatenate([np.array([header], np.int64), *[b for _, b in live[number]]])
        merged = merge_intervals(starts, ends)
        for _, a, b in (g for g in gone if g[0] == number):
            if b > a and _overlaps(*merged, a, b):
                raise BadInput(f"MRXS data file {number}: a removed image shares bytes with kept data")
        plans.append(Plan(int(merged[1][-1]), [(VERSION_LENGTH, _new_header_id(slide, number, new_id))], *merged))
    placed = []
    for record, image in replaced:
        # over the old image when it fits, else after the end of its data file
        number, old, room = int(record.files[0]), int(record.offsets[0]), int(record.lengths[0])
        plan = plans[number]
        where = old if len(image) <= room else (plan.size + 7) // 8 * 8
        if where + len(image) > INT32_MAX:
            raise BadInput(f"MRXS data file {number}: no room for a replaced {record.role} image below 2 GiB")
        plan.patches.append((where, image))
        starts, ends = merge_intervals(np.append(plan.live_starts, where), np.append(plan.live_ends, where + len(image)))
        plans[number] = Plan(max(plan.size, where + len(image)), plan.patches, starts, ends)
        placed.append((int(record.entry_at[0]), where, len(image)))
    for number, plan in enumerate(plans):
        plan.patches = _check_patches(plan.patches)
        plan.pixel_ranges = _pixel_ranges([a for a, _ in tiles[number]], [b for _, b in tiles[number]], plan.patches)
    return plans, placed


def _label_size(slide: MrxsSlide, record: Record) -> tuple[int, int]:
    head = read_head(slide.data_path(int(record.files[0])), int(record.offsets[0]),
                     min(int(record.lengths[0]), 4 << 20))
    try:
        width, height = Image.open(io.BytesIO(head)).size
    except Exception:  # an unreadable old label: a label of the usual shape
        width, height = 400, 300
    return min(width, LABEL_MAX_SIDE), min(height, LABEL_MAX_SIDE)


def read_photo(slide: MrxsSlide, record: Record) -> tuple[np.ndarray, str] | str:
    """The 8-bit picture of a photo record and its Pillow format, or why not."""
    if len(record.offsets) != 1:
        return "the photo is stored in several pieces"
    length = int(record.lengths[0])
    if length > MAX_BYTES:
        return "the photo is too large to re-encode"
    data = read_head(slide.data_path(int(record.files[0])), int(record.offsets[0]), length)
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if picture.width * picture.height * 3 > MAX_BYTES:
                return "the photo is too large to re-encode"
            fmt = picture.format or ""
            if picture.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr"):
                return f"the photo has {picture.mode} pixels; only 8-bit photos are re-encoded"
            image = np.asarray(picture.convert("L" if picture.mode in ("1", "L", "LA") else "RGB"))
    except Exception as e:  # Pillow raises many kinds for a damaged image
        return f"the photo cannot be decoded ({type(e).__name__})"
    return image, fmt


def blank_photo(slide: MrxsSlide, record: Record) -> tuple[bytes, LabelArea] | str:
    """A whole-slide photo record (macro, preview, slide photo) with its
    label area painted over, encoded again in its own format; or why not."""
    found = read_photo(slide, record)
    if isinstance(found, str):
        return found
    image, fmt = found
    if fmt not in ("JPEG", "PNG", "BMP"):
        return f"the photo's format {fmt} is not re-encoded"
    area = find_label(image)
    if isinstance(area, str):
        return area
    return encode_picture(paint(image, area), fmt), area


def prepare_mrxs(asset: Asset, rules, context, options: WsiOptions) -> None:
    """Decide every change of an MRXS slide and record it."""
    data: MrxsData = asset.data
    slide = data.slide
    drop: set[int] = set()
    replaced: list[tuple[Record, bytes]] = []
    notes: list[str] = []
    for record in slide.nonhier:
        role = record.role
        if role is None or (role != "label" and options.macro == "keep"):
            continue
        if role == "label" and options.label == "replace" and len(record.offsets) == 1 and not data.replaced_label:
            width, height = _label_size(slide, record)
            replaced.append((record, render_label(width, height, ["DE-IDENTIFIED", data.pseudonym])))
            data.replaced_label = True
            asset.record("pixels", f"{record.describe()} label image", "wsi", "replaced by a pseudonym label")
            continue
        if role != "label" and options.macro == "blank-label":
            # the macro, the preview and the slide photo each may show the label
            found = blank_photo(slide, record)
            if not isinstance(found, str):
                image, area = found
                replaced.append((record, image))
                notes.append(f"{role}: label area blanked ({area.describe()})")
                asset.record("pixels", f"{record.describe()} {role} image", "wsi",
                             f"label area painted over ({area.describe()} of the long axis)")
                continue
            notes.append(f"{role} removed: {found}")
        drop.add(record.number)
        data.dropped[role] = data.dropped.get(role, 0) + 1
        asset.record("drop", f"{record.describe()} {role} image", "wsi")
    scrubber = make_scrubber(asset, rules, context, VENDOR, data.name)
    # the index and every data file repeat SLIDE_ID: only a value of the same length fits
    rule = scrubber.rule("SLIDE_ID")
    new_id = slide.slide_id if rule is not None and rule.action == "keep" else same_length_id(context, slide.slide_id)
    scrub_slidedat(slide.ini, scrubber, new_id, data.pseudonym)
    if drop:
        remove_records(slide.ini, slide, drop)
    data.ini = slide.ini.encode()
    new_bytes = new_id.encode("utf-8", "surrogateescape")
    data.data, placed = data_plans(slide, new_bytes, drop, replaced)
    data.index = index_plan(slide, new_bytes, drop, placed)
    if new_id != slide.slide_id:
        asset.record("replace", "Index.dat and data file headers:SLIDE_ID", "wsi", "a keyed value of the same length")
    asset.flags["wsi.vendor"] = VENDOR
    asset.flags["wsi.left_out"] = ", ".join(f"{n} {role}" for role, n in sorted(data.dropped.items())) or "nothing"
    if notes:
        asset.flags["wsi.macro"] = "; ".join(notes)
    if options.previews:
        asset.previews += photo_pictures(slide, dict((r.number, b) for r, b in replaced), drop,
                                         context.recipe.run.internal_previews)


def photo_pictures(slide: MrxsSlide, replaced: dict[int, bytes], drop: set[int], before: bool) -> list:
    """A before/after picture of each photo record (label, macro, preview,
    slide photo) for the QA report; ``before`` only for internal reports."""
    pictures = Pictures()
    for record in slide.nonhier:
        if record.role is None:
            continue
        found = read_photo(slide, record) if before else None
        original = found[0] if isinstance(found, tuple) else None
        new = replaced.get(record.number)
        if new is not None:  # a generated label or a painted photo, as the output holds it
            after = np.asarray(Image.open(io.BytesIO(new)).convert("RGB"))
            what = "replaced by a pseudonym label" if record.role == "label" else "label end painted over"
        else:
            width, height = _label_size(slide, record)
            what = "removed" if record.number in drop else "kept unchanged (not shown)"
            after = card(width, height, f"{record.role} {'removed' if record.number in drop else 'kept unchanged'}")
        pictures.add(f"mirax {record.role} image: {what}", original, after)
    return pictures.previews


# -- writing ----------------------------------------------------------------------------


def output_relative(asset: Asset, sink, context, options: WsiOptions) -> PurePosixPath:
    """Where the output .mrxs goes; its folder is that name without ``.mrxs``."""
    data: MrxsData = asset.data
    if context.recipe.output.naming == "pseudonymous":
        relative = PurePosixPath(sink.relative)
    else:
        name = f"{data.pseudonym}.mrxs" if options.rename_files else data.slide.mrxs.name
        relative = PurePosixPath(asset.item.id).parent / name
    return relative


def write_mrxs(asset: Asset, sink, context, options: WsiOptions) -> None:
    data: MrxsData = asset.data
    slide = data.slide
    if options.in_place:
        raise MedscrubError("in-place editing is not offered for MRXS slides ([wsi] in_place = true)")
    if data.index is None or data.ini is None:
        raise MedscrubError("the slide was not planned (medscrub_apply_rules did not run)")
    relative = safe_relative(str(output_relative(asset, sink, context, options)))
    if not relative.name.lower().endswith(".mrxs"):
        raise MedscrubError("the output name of the .mrxs file is too long to keep its extension")
    folder = relative.parent / relative.name[:-5]
    shutil.copyfile(slide.mrxs, sink.path(str(relative)))
    sink.path(str(folder / SLIDEDAT)).write_bytes(data.ini)
    apply(data.index, slide.index_path, sink.path(str(folder / slide.index_name)))
    for number, plan in enumerate(data.data):
        target = sink.path(str(folder / slide.data_names[number]))
        apply(plan, slide.data_path(number), target)
        if plan.pixel_ranges:
            # the kept tiles are the input's image bytes: the core's leak check need not read them
            sink.opaque(target, plan.pixel_ranges)


# -- verifying ---------------------------------------------------------------------------


def looks_like_slidedat(path: Path) -> bool:
    try:
        head = read_head(path, 0, 1 << 16)
    except OSError:
        return False
    return b"[GENERAL]" in head and b"[HIERARCHICAL]" in head


def _original_general(original: Path | None) -> dict[str, str]:
    paths = slide_paths(original) if original is not None else None
    if paths is None or not (paths[1] / SLIDEDAT).is_file():
        return {}
    ini = Ini.parse((paths[1] / SLIDEDAT).read_bytes())
    return {key: ini.get("GENERAL", key) or "" for key in ("SLIDE_ID", "SLIDE_NAME")}


def verify_slidedat(path: Path, original: Path | None, context, options: WsiOptions, label: str) -> list:
    """Findings in an output Slidedat.ini: associated image records still
    listed, fields a second pass would still change, the original SLIDE_ID
    or SLIDE_NAME."""
    ini = Ini.parse(path.read_bytes())
    findings = []
    for line in ini.fields():
        if line.group != "HIERARCHICAL" or not _NONHIER_VAL.match(line.key or "") or line.key.endswith("_SECTION"):
            continue
        role = associated_role(line.value)
        if role is None or (role == "label" and options.label == "replace") or (
                role != "label" and options.macro in ("keep", "blank-label")):
            continue
        findings.append(Finding(label, f"Slidedat.ini:[HIERARCHICAL] {line.key}", f"{role} image"))
    for line in ini.dropped:
        findings.append(Finding(label, f"Slidedat.ini:[{line.group}]", "comment or stray line"))
    probe = Asset(Item(path.name, "wsi", (path,), path.parent), "wsi", None)
    policy = "remove" if context.date_policy == "remove" else "keep"
    scrub_slidedat(ini, make_scrubber(probe, context.rules, context, VENDOR, path.name, policy), None, None)
    findings += [Finding(label, c.place, "identifying field", c.action) for c in probe.changes]
    before = _original_general(original)
    slide_id, name = ini.get("GENERAL", "SLIDE_ID") or "", (ini.get("GENERAL", "SLIDE_NAME") or "").strip()
    if before.get("SLIDE_ID") and slide_id.strip() == before["SLIDE_ID"].strip():
        findings.append(Finding(label, "Slidedat.ini:[GENERAL]:SLIDE_ID", "identifying field", "the original's"))
    if name and (name == before.get("SLIDE_NAME", "").strip() if before else not SLIDE_PSEUDONYM.match(name)):
        findings.append(Finding(label, "Slidedat.ini:[GENERAL]:SLIDE_NAME", "identifying field", "not a pseudonym"))
    return findings


def verify_mrxs(output: Path, original: Path | None, context) -> list:
    """The checks of one MRXS output file: a ``.mrxs`` must open with its
    folder; a Slidedat.ini (found by its content, as the core's temporary
    files have other names) must hold nothing identifying.  The index and
    data files hold no text the core's byte search would not find."""
    options: WsiOptions = context.options("wsi") or WsiOptions()
    label = str(output)
    if output.suffix.lower() == ".mrxs":
        try:
            slide = open_slide(output, output.with_name(output.name[:-5]))
        except BadInput as e:
            return [Finding(label, "structure", "unreadable", str(e))]
        if options.macro != "blank-label":
            return []
        findings = []
        for record in slide.nonhier:
            if record.role in (None, "label"):
                continue
            found = read_photo(slide, record)
            if isinstance(found, str) or not is_blanked(found[0]):
                findings.append(Finding(label, record.describe(), f"{record.role} image", "label area not blanked"))
        return findings
    if looks_like_slidedat(output):
        return verify_slidedat(output, original, context, options, label)
    return []


def is_mrxs_output(output: Path, original: Path | None) -> bool:
    if output.suffix.lower() == ".mrxs" or output.name == SLIDEDAT:
        return True
    if original is not None and slide_paths(Path(original)) is not None:
        return True
    parent = output.parent
    return parent.with_name(parent.name + ".mrxs").is_file()
