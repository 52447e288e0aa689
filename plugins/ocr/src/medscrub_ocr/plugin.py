"""The hook implementations: the ``erase-text`` cleaner, the ``[ocr]``
recipe section and the plain image format (PNG, JPEG, TIFF)."""

from __future__ import annotations

from pathlib import Path

from medscrub import Asset, Claim, Cleaner, Format, MedscrubError, hookimpl

from . import cleaner, image, verify
from .engines import EngineUnavailable
from .options import OcrOptions


@hookimpl
def medscrub_register_formats(register) -> None:
    register(Format(image.FORMAT, "plain images: PNG, JPEG, single-page untiled TIFF (metadata removed)",
                    "medscrub-ocr"))


@hookimpl
def medscrub_recipe_sections(register) -> None:
    register("ocr", OcrOptions)


@hookimpl
def medscrub_register_cleaners(register) -> None:
    register(Cleaner(cleaner.NAME, cleaner.HELP, cleaner.applies, cleaner.clean, flag="--erase-text"))


@hookimpl
def medscrub_check_rules(rules, context) -> list[str] | None:
    """Before a run with erase-text: the region-rule files parse and the
    engine is installed, so a typo stops the run, not every file."""
    if cleaner.NAME not in {c.name for c in getattr(context, "cleaners", ())}:
        return None
    options = cleaner.options_of(context)
    problems = []
    try:
        cleaner.rules_of(context, options)
    except MedscrubError as e:
        problems.append(str(e))
    try:
        cleaner.engine_of(options)
    except EngineUnavailable as e:
        problems.append(f"ocr.engine = {options.engine!r}: {e}")
    return problems or None


@hookimpl
def medscrub_claim(path: Path, context) -> Claim | None:
    if image.sniff(path):
        return Claim(image.FORMAT, (path,))
    return None


@hookimpl
def medscrub_read(item, context) -> Asset | None:
    if item.format != image.FORMAT:
        return None
    return image.read(item)


@hookimpl
def medscrub_apply_rules(asset: Asset, rules, context) -> bool | None:
    if asset.format != image.FORMAT:
        return None
    image.apply_rules(asset)
    return True


@hookimpl
def medscrub_write(asset: Asset, sink, context) -> bool | None:
    if asset.format != image.FORMAT:
        return None
    image.write(asset.data, sink.path())
    return True


@hookimpl
def medscrub_verify(output: Path, original: Path | None, format: str, context):
    """Plain images: metadata left.  Plain images and DICOM: identifying
    text read in the pixels (``[ocr] verify``, ``medscrub verify --ocr``)."""
    if context is not None:
        context.cache(verify.CACHE).setdefault("ocr_checked", 0)  # tells medscrub verify that OCR is here
    if format == "dicom":
        return verify.verify_dicom(Path(output), original, context, cleaner.options_of(context))
    if format != image.FORMAT:
        return None
    return image.verify(Path(output)) + verify.verify_image(Path(output), original, context,
                                                            cleaner.options_of(context))
