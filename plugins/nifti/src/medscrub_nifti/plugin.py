"""The ``medscrub-nifti`` plugin: NIfTI and Analyze images and BIDS datasets.

Registered under the entry point ``nifti``.  Each hook hands its own formats
to the module that lines up with it and returns None for the rest.
"""

from __future__ import annotations

from medscrub import PROFILE, Format, RuleSet, hookimpl

from . import apply, reader, verify, writer
from .layout import layout_for
from .options import NiftiOptions
from .rules import check as check_rules
from .volume import get_volume, put_volume

FORMATS = {
    "nifti": "NIfTI-1, NIfTI-2 (.nii, .nii.gz) and Analyze 7.5 / NIfTI pairs (.hdr + .img)",
    "bids-json": "BIDS JSON sidecars, dataset_description.json, column descriptions",
    "bids-tsv": "BIDS participants.tsv, sessions.tsv, scans.tsv and other tables",
    "bids-text": "README, CHANGES, LICENSE and .bidsignore at a BIDS root",
    "bids-file": ".bval, .bvec and physiology .tsv.gz (numbers only)",
}
PROFILE_NAME = "nifti-bids-profile"


def _ours(format: str) -> bool:
    return format in FORMATS


@hookimpl
def medscrub_register_formats(register) -> None:
    for name, description in FORMATS.items():
        register(Format(name, description, "medscrub-nifti"))


@hookimpl
def medscrub_recipe_sections(register) -> None:
    register("nifti", NiftiOptions)


@hookimpl
def medscrub_metadata_rules(register, context) -> None:
    # The profile is code (see profile.py); the empty set names it in listings.
    register(RuleSet(name=PROFILE_NAME, rules=(), layer=PROFILE, formats=("nifti", "bids-json", "bids-tsv")))


@hookimpl
def medscrub_check_rules(rules, context) -> list[str] | None:
    return check_rules(rules, context) or None


@hookimpl
def medscrub_claim(path, context):
    return reader.claim(path, context)


@hookimpl
def medscrub_read(item, context):
    if not _ours(item.format):
        return None
    return reader.read(item, context)


@hookimpl
def medscrub_apply_rules(asset, rules, context):
    if not _ours(asset.format):
        return None
    return apply.apply_rules(asset, rules, context)


@hookimpl
def medscrub_get_volume(asset, context):
    return get_volume(asset, context)


@hookimpl
def medscrub_put_volume(asset, volume, context):
    return put_volume(asset, volume, context)


@hookimpl
def medscrub_output_name(asset, context):
    if not _ours(asset.format):
        return None
    return layout_for(context).output_name(asset.item.path, asset.item.id, context)


@hookimpl
def medscrub_write(asset, sink, context):
    if not _ours(asset.format):
        return None
    return writer.write(asset, sink, context.options("nifti") or NiftiOptions())


@hookimpl
def medscrub_verify(output, original, format, context):
    return verify.verify(output, original, format, context)
