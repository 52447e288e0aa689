"""Opening a slide and deciding its edit: what the read and rules hooks do."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from medscrub import Asset, BadInput, Item, MedscrubError, Rule

from .edit import Plan, Rewrite
from .label import render_label
from .macro import LabelArea, blank_tiff_macro, read_tiff_image
from .options import WsiOptions
from .previews import Pictures, card
from .scrub import FieldScrubber
from .slide import Outcome, Slide, assign_roles, detect, drop_summary, plan_slide
from .tiff import IMAGE_LENGTH, IMAGE_WIDTH, Ifd, TiffStructure, is_tiff_head

TIFF_SUFFIXES = {".svs", ".ndpi", ".bif", ".tif", ".tiff", ".ptif", ".qptiff"}
LABEL_MAX_SIDE = 2048


@dataclass
class SlideData:
    """``asset.data`` of a slide."""

    slide: Slide
    name: str  # the input file name
    pseudonym: str  # the slide's keyed pseudonym
    plan: Plan | None = None
    outcome: Outcome | None = None

    @property
    def vendor(self) -> str:
        return self.slide.vendor


def is_slide_file(path: Path) -> bool:
    """A TIFF with tiles or more than one image.  A single untiled image is a
    plain picture (the image plugin's); a TIFF too damaged to tell is claimed,
    so its error is reported here."""
    if path.suffix.lower() not in TIFF_SUFFIXES or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            if not is_tiff_head(f.read(4)):
                return False
    except OSError:
        return False
    try:
        with TiffStructure(path) as t:
            return len(t.ifds) > 1 or any(ifd.tiled or ifd.subifds for ifd in t.ifds)
    except (BadInput, OSError, ValueError, struct.error):
        return True


def open_slide(path: Path) -> Slide:
    """Parse and classify a slide; BadInput with a one-line reason when damaged."""
    try:
        t = TiffStructure(path)
    except OSError as e:
        raise BadInput(f"cannot read the slide: {e.strerror or e}") from None
    try:
        slide = Slide(t, detect(t))
        assign_roles(slide)
    except BaseException:
        t.close()
        raise
    return slide


def read_item(item: Item, context) -> Asset:
    slide = open_slide(item.path)
    name = item.path.name
    pseudonym = context.pseudonyms.pseudonym("slide", name, prefix="S")
    asset = Asset(item, "wsi", SlideData(slide, name, pseudonym))
    remember_file_name(asset, name)
    return asset


def remember_file_name(asset: Asset, name: str) -> None:
    """A slide's file name usually names the case: its stem is looked for in
    the output (short names without digits would match by chance)."""
    stem = name.split(".")[0]
    if len(stem) >= 8 or any(c.isdigit() for c in stem) and len(stem) >= 5:
        asset.remember("label", stem)


def wsi_rules(rules) -> dict[str, Rule]:
    found: dict[str, Rule] = {}
    for _, rule in rules.for_format("wsi"):
        if rule.format == "wsi":  # rules without a format name are another format's selectors
            found[rule.match] = rule
    return found


def make_scrubber(asset: Asset, rules, context, vendor: str, name: str, date_policy: str | None = None) -> FieldScrubber:
    """The field scrubber of one slide: the recipe's wsi rules, the run's date
    policy and the offset keyed on the slide's file name."""
    pseudonyms = context.pseudonyms
    return FieldScrubber(
        asset,
        vendor,
        date_policy or context.date_policy,
        pseudonyms.date_offset(f"slide:{name}"),
        rules=wsi_rules(rules) if rules is not None else {},
        pseudonym=lambda key, value: pseudonyms.pseudonym(f"wsi:{key}", value),
        hasher=lambda key, value: pseudonyms.hash(f"wsi:{key}", value),
    )


def decide(asset: Asset, rules, context, options: WsiOptions, date_policy: str | None = None) -> Outcome:
    """Plan every change of a slide asset and record it."""
    data: SlideData = asset.data
    slide = data.slide
    scrubber = make_scrubber(asset, rules, context, slide.vendor, data.name, date_policy)

    written: dict[tuple[int, ...], bytes | np.ndarray] = {}  # what the output shows instead, per IFD

    def label_image(ifd: Ifd) -> tuple[int, int, bytes]:
        t = slide.tiff
        width = min(t.value(ifd, IMAGE_WIDTH, 400) or 400, LABEL_MAX_SIDE)
        height = min(t.value(ifd, IMAGE_LENGTH, 300) or 300, LABEL_MAX_SIDE)
        jpeg = render_label(width, height, ["DE-IDENTIFIED", data.pseudonym])
        written[ifd.path] = jpeg
        return width, height, jpeg

    def macro_image(ifd: Ifd, rw: Rewrite) -> LabelArea | str:
        return blank_tiff_macro(slide.tiff, ifd, slide.vendor, rw, written)

    try:
        outcome = plan_slide(slide, scrubber, options.label, options.macro, label_image, macro_image)
    except MedscrubError:
        raise
    except (ValueError, IndexError) as e:
        raise BadInput(f"cannot edit this slide: {e}") from None
    if options.previews:
        asset.previews += slide_pictures(slide, outcome, written, context.recipe.run.internal_previews)
    return outcome


def slide_pictures(slide: Slide, outcome: Outcome, written: dict, before: bool) -> list:
    """A before/after picture of each label and macro image of the slide
    (``before`` only when internal pictures are asked for: they show the
    patient)."""
    t = slide.tiff
    pictures = Pictures()
    for ifd in t.ifds:
        role = slide.role(ifd)
        if role not in ("label", "macro"):
            continue
        width, height = t.value(ifd, IMAGE_WIDTH, 0) or 0, t.value(ifd, IMAGE_LENGTH, 0) or 0
        original = read_tiff_image(t, ifd) if before else None
        shown = written.get(ifd.path)
        if isinstance(shown, bytes):  # a generated label, as the output holds it
            after: bytes | np.ndarray = np.asarray(Image.open(io.BytesIO(shown)))
            what = "replaced by a pseudonym label"
        elif shown is not None:
            after, what = shown, "label end painted over"
        elif ifd.path in outcome.rewrite.dropped or ifd.path in outcome.rewrite.placeholders or role == "label":
            after, what = card(width, height, f"{role} removed"), "removed"
        else:  # macro = "keep": the report must not show it
            after, what = card(width, height, "macro kept unchanged"), "kept unchanged (not shown)"
        pictures.add(f"{slide.vendor} {role} image ({width}x{height}): {what}", original, after)
    return pictures.previews


def prepare(asset: Asset, rules, context, options: WsiOptions) -> None:
    data: SlideData = asset.data
    try:
        outcome = decide(asset, rules, context, options)
        data.outcome = outcome
        data.plan = outcome.rewrite.compile()
    finally:
        data.slide.tiff.close()
    asset.flags["wsi.vendor"] = data.vendor
    asset.flags["wsi.left_out"] = drop_summary(outcome)
    if outcome.macro_notes:
        asset.flags["wsi.macro"] = "; ".join(outcome.macro_notes)
