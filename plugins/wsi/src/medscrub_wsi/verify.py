"""Looking for labels, macros and identifying fields left in a slide output."""

from __future__ import annotations

from pathlib import Path

from medscrub import Asset, BadInput, Finding, Item
from medscrub.verification import scan_bytes

from .macro import is_blanked, read_tiff_image
from .options import WsiOptions
from .reader import SlideData, decide, is_slide_file, open_slide
from .slide import PLACEHOLDER_DESCRIPTION
from .tiff import IMAGE_DESCRIPTION, IMAGE_LENGTH, IMAGE_WIDTH


def verify_slide(output: Path, original: Path | None, context) -> list[Finding]:
    label = str(output)
    options: WsiOptions = context.options("wsi") or WsiOptions()
    findings: list[Finding] = []
    try:
        slide = open_slide(output)
    except BadInput as e:
        return [Finding(label, "structure", "unreadable", str(e))]
    try:
        t = slide.tiff
        for ifd in t.ifds:
            role = slide.role(ifd)
            placeholder = (t.value(ifd, IMAGE_WIDTH) == 1 and t.value(ifd, IMAGE_LENGTH) == 1
                           and t.text(ifd, IMAGE_DESCRIPTION) == PLACEHOLDER_DESCRIPTION)
            if placeholder:
                continue
            if role == "label" and options.label == "replace":
                continue
            if role == "macro" and options.macro == "keep":
                continue
            if role == "macro" and options.macro == "blank-label":
                image = read_tiff_image(t, ifd)
                if isinstance(image, str) or not is_blanked(image):
                    findings.append(Finding(label, f"{ifd.describe()}", "macro image", "label area not blanked"))
                continue
            if role in ("label", "macro", "other"):
                findings.append(Finding(label, f"{ifd.describe()}", f"{role} image"))
        # fields: what a second pass would still change is left over
        probe = Asset(Item(output.name, "wsi", (output,), output.parent), "wsi",
                      SlideData(slide, output.name, "S"))
        policy = "remove" if context.date_policy == "remove" else "keep"
        decide(probe, context.rules, context, _fields_only(options), date_policy=policy)
        for change in probe.changes:
            if change.action in ("drop", "pixels"):
                continue
            findings.append(Finding(label, change.place, "identifying field", change.action))
    finally:
        slide.tiff.close()
    if original is not None and is_slide_file(Path(original)):
        try:
            before = open_slide(Path(original))
        except BadInput:
            return findings
        try:
            probe = Asset(Item(Path(original).name, "wsi", (Path(original),), Path(original).parent), "wsi",
                          SlideData(before, Path(original).name, "S"))
            decide(probe, context.rules, context, _fields_only(options, label=options.label))
        finally:
            before.tiff.close()
        findings += scan_bytes(output, probe.identifiers, label=label)
    return findings


def _fields_only(options: WsiOptions, label: str = "remove") -> WsiOptions:
    """The options for a probe that only looks at fields: no label rendered
    (unless asked), no macro decoded and painted (a blanked macro's fields
    are those of a kept one)."""
    macro = "keep" if options.macro == "blank-label" else options.macro
    return options.model_copy(update={"label": label, "macro": macro})
