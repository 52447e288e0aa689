"""The hooks of the twix plugin (registered under the entry point ``twix``)."""

from __future__ import annotations

import re
from pathlib import Path

from medscrub import Asset, BadInput, Claim, Format, MedscrubError, hookimpl

from . import catalog
from .layout import sniff
from .options import TwixOptions
from .reader import read_twix
from .rules import FILE_HEADER, FORMAT, apply, twix_rules
from .verify import header_leaks, open_original, verify
from .writer import data_ranges, write_twix

BUFFERS = ("config", "dicom", "meas", "measyaps", "phoenix", "spice", FILE_HEADER.lower())
_SELECTOR = re.compile(r"^(?:([A-Za-z]+):)?([A-Za-z_][\w.\[\]]*)$")
_SAFE = re.compile(r'^[ !#-~]*$')
_DATE_CATEGORIES = (catalog.BIRTH_DATE, catalog.DATE, catalog.UID)


def _options(context) -> TwixOptions:
    return context.options(FORMAT) or TwixOptions()


def _selectors(context) -> set[str]:
    """Field names the site rules name, so the reader looks for them too."""
    out = set()
    for _, rule in twix_rules(context.rules):
        m = _SELECTOR.match(rule.match)
        if m:
            out.add(m.group(2).lower())
    return out


@hookimpl
def medscrub_register_formats(register):
    register(Format(FORMAT, "Siemens raw MR data (.dat, VB and VD/VE)"))


@hookimpl
def medscrub_recipe_sections(register):
    register(FORMAT, TwixOptions)


@hookimpl
def medscrub_check_rules(rules, context):
    problems = []
    for source, rule in twix_rules(rules):
        mine = rule.format == FORMAT
        m = _SELECTOR.match(rule.match)
        if m is None or (m.group(1) and m.group(1).lower() not in BUFFERS):
            if mine:
                problems.append(f"twix rule {rule.match!r} ({source}): use a field name such as tPatientName or "
                                f"Buffer:Field with a buffer among Config, Dicom, Meas, MeasYaps, Phoenix, Spice, "
                                f"FileHeader")
            continue
        if rule.action == "replace" and not _SAFE.match(rule.value or ""):
            problems.append(f"twix rule {rule.match!r} ({source}): the replacement must be printable ASCII "
                            f"without double quotes")
        if mine and rule.action == "shift":
            cat = catalog.category(m.group(2), _options(context).extra_fields)
            if cat is not None and cat not in _DATE_CATEGORIES:
                problems.append(f"twix rule {rule.match!r} ({source}): shift needs a field that holds dates")
    return problems or None


@hookimpl
def medscrub_claim(path: Path, context):
    if path.is_file() and path.suffix.lower() == ".dat" and sniff(path):
        return Claim(FORMAT, (path,))
    return None


@hookimpl
def medscrub_read(item, context):
    if item.format != FORMAT:
        return None
    options = _options(context)
    try:
        return read_twix(item, lambda data: Asset(item, FORMAT, data), options.extra_fields, _selectors(context))
    except OSError as e:
        raise BadInput(f"cannot read: {e.strerror or e}") from None


@hookimpl
def medscrub_apply_rules(asset, rules, context):
    if asset.format != FORMAT:
        return None
    apply(asset, rules, context, _options(context))
    return True


@hookimpl
def medscrub_output_name(asset, context):
    if asset.format != FORMAT:
        return None
    digest = context.pseudonyms.hash("twix-file", asset.item.id, 16)
    return f"twix/{digest}.dat"


@hookimpl
def medscrub_write(asset, sink, context):
    if asset.format != FORMAT:
        return None
    target = sink.path()
    written = write_twix(asset.data, target)
    _self_check(asset, target, written)
    sink.opaque(target, data_ranges(asset.data))  # k-space: the core's leak check reads only the headers
    return True


def _self_check(asset: Asset, target: Path, written: int) -> None:
    """Every planned value is in the output and no remembered value is left in
    its headers; a mismatch withholds the output."""
    with open(target, "rb") as f:
        for offset, _, new in asset.data.expected:
            f.seek(offset)
            if f.read(len(new)) != new:
                raise MedscrubError(f"twix self-check: the output differs from the plan at byte {offset}; output withheld")
    leaks = header_leaks(target, asset.identifiers, asset.item.id)
    if leaks:
        raise MedscrubError(f"twix self-check: {leaks[0].kind} left in the {leaks[0].place}; output withheld")
    if written < asset.data.layout.size:
        raise MedscrubError(f"the input shrank while it was copied ({written} of {asset.data.layout.size} bytes)")


@hookimpl
def medscrub_verify(output, original, format, context):
    if format != FORMAT:
        return None
    options = _options(context)
    selectors = _selectors(context)
    asset = None
    if original is not None:
        item = open_original(Path(original))
        asset = read_twix(item, lambda data: Asset(item, FORMAT, data), options.extra_fields, selectors)
        apply(asset, context.rules, context, options)
    try:
        return verify(Path(output), Path(original) if original else None, asset, options.extra_fields, selectors)
    except BadInput as e:
        from medscrub import Finding

        return [Finding(Path(output).name, "structure", "unreadable", str(e))]
