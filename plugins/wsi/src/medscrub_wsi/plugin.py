"""The medscrub hooks of the whole-slide image plugin."""

from __future__ import annotations

from pathlib import Path

from medscrub import Asset, Claim, Format, MedscrubError, hookimpl
from medscrub.verification import scan_bytes

from . import edit
from .dicom_label import note_slide, replace_label
from .mrxs import slide_paths
from .mrxs_edit import MrxsData, is_mrxs_item, is_mrxs_output, prepare_mrxs, read_mrxs, verify_mrxs, write_mrxs
from .options import WsiOptions
from .reader import SlideData, is_slide_file, prepare, read_item
from .slide import VENDORS
from .verify import verify_slide

FORMAT = "wsi"
VENDOR_PREFIXES = (*VENDORS, "tiff")
WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage


def _options(context) -> WsiOptions:
    return context.options(FORMAT) or WsiOptions()


@hookimpl
def medscrub_register_formats(register) -> None:
    register(Format(FORMAT, "whole-slide images: " + ", ".join(VENDORS.values()), "medscrub-wsi"))


@hookimpl
def medscrub_recipe_sections(register) -> None:
    register(FORMAT, WsiOptions)


@hookimpl
def medscrub_check_rules(rules, context) -> list[str] | None:
    problems = []
    for ruleset, rule in rules.for_format(FORMAT):
        if rule.format != FORMAT:
            continue
        prefix, colon, name = rule.match.partition(":")
        if not rule.match.strip() or (colon and (prefix not in VENDOR_PREFIXES or not name.strip())):
            problems.append(
                f"rule {rule.match!r} ({ruleset.name}): a wsi selector is a field name, optionally after a vendor "
                f"({', '.join(VENDOR_PREFIXES)}) and a colon, such as 'aperio:Title'"
            )
    return problems


@hookimpl
def medscrub_claim(path: Path, context) -> Claim | None:
    mrxs = slide_paths(path)
    if mrxs is not None:
        # the .mrxs file and its data folder are one item; discovery asks
        # about the folder first (it sorts before "name.mrxs")
        return Claim(FORMAT, tuple(p for p in sorted(mrxs, key=lambda p: p != path) if p.exists()))
    if is_slide_file(path):
        return Claim(FORMAT, (path,))
    return None


@hookimpl
def medscrub_read(item, context) -> Asset | None:
    if item.format != FORMAT:
        return None
    if is_mrxs_item(item):
        return read_mrxs(item, context)
    return read_item(item, context)


@hookimpl(tryfirst=True)
def medscrub_apply_rules(asset: Asset, rules, context) -> bool | None:
    # first, so that a DICOM WSI label's slide ID is seen before medscrub-dicom's profile replaces it
    if asset.format == "dicom":
        if _is_wsi_label(asset.data) and _options(context).dicom_label == "replace":
            note_slide(asset.data, asset.item.id, context)
        return None  # medscrub-dicom cleans it
    if asset.format != FORMAT:
        return None
    if isinstance(asset.data, MrxsData):
        prepare_mrxs(asset, rules, context, _options(context))
    else:
        prepare(asset, rules, context, _options(context))
    return True


def _wsi_types(data) -> set[str]:
    """The ImageType values of a DICOM WSI instance (empty for any other data)."""
    if str(getattr(data, "SOPClassUID", "")) != WSI_SOP_CLASS:
        return set()
    return {str(v).upper() for v in (getattr(data, "ImageType", None) or ())}


def _is_wsi_label(data) -> bool:
    return "LABEL" in _wsi_types(data)


@hookimpl(tryfirst=True)
def medscrub_inspect(asset: Asset, context) -> None:
    # DICOM WSI instances are read and cleaned by medscrub-dicom; this plugin
    # decides which image types stay out of the output and, after the
    # cleaners, puts a generated label into a LABEL instance.  First, so that
    # medscrub-dicom's burned-in check sees the new label.
    if asset.format != "dicom":
        return
    types = _wsi_types(asset.data)
    if not types:
        return
    options = _options(context)
    if "LABEL" in types and options.dicom_label == "remove":
        asset.quarantine = "DICOM WSI label instance left out ([wsi] dicom_label = 'remove')"
    elif "LABEL" in types and options.dicom_label == "replace":
        replace_label(asset.data, asset, context)
    elif "OVERVIEW" in types and options.dicom_overview == "remove":
        asset.quarantine = "DICOM WSI overview instance left out: it shows the label ([wsi] dicom_overview = 'remove')"


def _output_name(data: SlideData | MrxsData) -> str:
    if isinstance(data, MrxsData):
        return f"{data.pseudonym}.mrxs"
    suffixes = [s.lower() for s in Path(data.name).suffixes]
    suffix = "".join(suffixes[-2:]) if suffixes[-2:-1] == [".ome"] else "".join(suffixes[-1:])
    return f"{data.pseudonym}{suffix}"


@hookimpl
def medscrub_output_name(asset: Asset, context) -> str | None:
    if asset.format != FORMAT:
        return None
    return _output_name(asset.data)


@hookimpl
def medscrub_write(asset: Asset, sink, context) -> bool | None:
    if asset.format != FORMAT:
        return None
    options = _options(context)
    if isinstance(asset.data, MrxsData):
        write_mrxs(asset, sink, context, options)
        return True
    data: SlideData = asset.data
    if data.plan is None:
        raise MedscrubError("the slide was not planned (medscrub_apply_rules did not run)")
    if options.in_place:
        edit.apply(data.plan, asset.item.path, None)
        findings = scan_bytes(asset.item.path, asset.identifiers)
        if findings:
            raise MedscrubError(f"in-place edit left {findings[0].kind} in {findings[0].place}")
        asset.record("replace", "input file", "wsi", "edited in place")
        return True
    if context.recipe.output.naming == "pseudonymous" or not options.rename_files:
        target = sink.path()
    else:
        target = sink.path(_output_name(data))
    edit.apply(data.plan, asset.item.path, target)
    # the kept tiles are the input's pixel bytes: the core's leak check need not read them
    if data.plan.pixel_ranges and hasattr(sink, "opaque"):
        sink.opaque(target, data.plan.pixel_ranges)
    return True


@hookimpl
def medscrub_verify(output: Path, original: Path | None, format: str, context):
    if format != FORMAT:
        return None
    if is_mrxs_output(Path(output), Path(original) if original else None):
        return verify_mrxs(Path(output), Path(original) if original else None, context)
    return verify_slide(Path(output), Path(original) if original else None, context)
