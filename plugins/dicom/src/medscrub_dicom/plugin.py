"""The hook implementations: what medscrub calls for DICOM."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path

from pydicom import Dataset

from medscrub import PROFILE, Asset, BadInput, Change, Claim, Format, Item, MedscrubError, RuleSet, hookimpl

from . import __version__
from .burned_in import burned_in_status
from .markers import add_markers
from .options import DicomOptions
from .profile import Plan, Scrubber, patient_key
from .raw import text_value
from .reader import is_dicomdir, read, sniff
from .rules import check_rules, compile_site_rules
from .table import PROFILE_NAME
from .verify import verify_output
from .volume import DicomSeries, datasets_of, get_volume, group_key, put_volume
from .writer import rebuild_file_meta, write_dicomdir, write_file

FORMAT = "dicom"
ERASE_TEXT = "erase-text"

_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def options_of(context) -> DicomOptions:
    options = context.options(FORMAT) if context is not None else None
    return options if isinstance(options, DicomOptions) else DicomOptions()


def plan_for(context) -> Plan:
    """The run's compiled plan, built once per context (and so per worker)."""
    plan = _plans.get(context)
    if plan is None:
        plan = Plan(options_of(context), context.date_policy, compile_site_rules(context.rules))
        _plans[context] = plan
    return plan


class State:
    """What the plugin keeps with a dataset between hooks: originals for
    pseudonymous naming (never written) and whether it is dropped."""

    def __init__(self, key: str, study: str, series: str, sop: str, dicomdir: bool) -> None:
        self.key, self.study, self.series, self.sop, self.dicomdir = key, study, series, sop, dicomdir
        self.dropped: str | None = None


def _state(ds: Dataset) -> State | None:
    return ds.__dict__.get("_medscrub_state")


def _uid_text(ds: Dataset, tag: int) -> str:
    return text_value(ds, tag).strip()


@hookimpl
def medscrub_register_formats(register) -> None:
    register(Format(FORMAT, "DICOM: Part 10 files, bare data sets and DICOMDIR", "medscrub-dicom"))


@hookimpl
def medscrub_recipe_sections(register) -> None:
    register(FORMAT, DicomOptions)


@hookimpl
def medscrub_metadata_rules(register, context) -> None:
    # The profile itself is this plugin's engine; the empty set names it in listings.
    register(RuleSet(name=PROFILE_NAME, rules=(), layer=PROFILE, formats=(FORMAT,)))


@hookimpl
def medscrub_check_rules(rules, context) -> list[str] | None:
    return check_rules(rules) or None


@hookimpl
def medscrub_claim(path: Path, context) -> Claim | None:
    if path.is_file() and sniff(path):
        return Claim(FORMAT, (path,))
    return None


@hookimpl
def medscrub_group_key(item, context) -> str | None:
    if item.format != FORMAT or not context.wants_volumes:
        return None
    return group_key(item)


@hookimpl
def medscrub_read(item, context) -> Asset | None:
    if item.format != FORMAT:
        return None
    if len(item.inputs) == 1:
        return read(item)
    series = DicomSeries([], list(item.inputs), list(item.paths))
    for member, path in zip(item.inputs, item.paths, strict=True):
        try:
            series.datasets.append(read(Item(member, FORMAT, (path,), item.root)).data)
        except BadInput as e:
            raise BadInput(f"{member}: {e} (the whole series is held back)") from None
    return Asset(item=item, format=FORMAT, data=series)


# Changes are immutable and mostly the same in every file of a run ("remove
# (0009,1001)"): one object each, shared by the assets that record it.
_changes: dict[tuple[str, str, str, str], Change] = {}


def _recorder(asset: Asset) -> Callable[..., None]:
    """``asset.record``, sharing equal :class:`Change` objects."""
    append = asset.changes.append

    def record(action: str, place: str, source: str = "", detail: str = "") -> None:
        key = (action, place, source, detail)
        change = _changes.get(key)
        if change is None:
            change = Change(action, place, source, detail)
            if len(_changes) < 100_000:
                _changes[key] = change
        append(change)

    return record


def scrub_asset(asset: Asset, context, keep_dicomdir: bool = False) -> Scrubber | None:
    """Apply the profile and the site rules to ``asset.data`` in place (each
    dataset of a series).

    ``keep_dicomdir`` cleans a DICOMDIR even under pseudonymous naming (the
    verifier needs its identifiers)."""
    if isinstance(asset.data, DicomSeries):
        for ds, member in zip(asset.data.datasets, asset.data.ids, strict=True):
            scrub_dataset(ds, member, asset, context, keep_dicomdir)
        return None
    return scrub_dataset(asset.data, asset.item.id, asset, context, keep_dicomdir)


def scrub_dataset(ds: Dataset, item_id: str, asset: Asset, context, keep_dicomdir: bool) -> Scrubber | None:
    plan = plan_for(context)
    dicomdir = is_dicomdir(ds)
    key = patient_key(ds)
    state = State(key, _uid_text(ds, 0x0020000D), _uid_text(ds, 0x0020000E), _uid_text(ds, 0x00080018), dicomdir)
    ds.__dict__["_medscrub_state"] = state
    if dicomdir and not keep_dicomdir and context.recipe.output.naming == "pseudonymous":
        state.dropped = ("DICOMDIR left out: output.naming = 'pseudonymous' renames the files it references, "
                         "so its file IDs would point at nothing")
        asset.record("drop", "DICOMDIR", PROFILE_NAME, state.dropped)
        asset.flags["dropped"] = "DICOMDIR under pseudonymous naming"
        return None
    scrubber = Scrubber(plan, context, asset.remember, _recorder(asset))
    if dicomdir:
        scrubber.record_keys = directory_patient_keys(ds)
    try:
        scrubber.scrub(ds, key)
        rebuild_file_meta(ds, scrubber.map_uid, asset.record, asset.remember, __version__,
                          context.pseudonyms.uid("medscrub-item:" + item_id))
    except MedscrubError:
        raise
    except (ValueError, TypeError, KeyError, EOFError, OSError, AttributeError, NotImplementedError) as e:
        raise BadInput(f"cannot read the DICOM data: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                       ) from None
    if not dicomdir:
        add_markers(ds, plan.options, plan.policy, __version__, bool(plan.site))
    _forget_product_names(ds, asset)
    return scrubber


# Kept product names: a removed institution or station value found inside one
# of them (a test site named after its vendor) names the product, not a place.
_PRODUCT_TAGS = (0x00080070, 0x00081090)  # Manufacturer, ManufacturerModelName


def _forget_product_names(ds: Dataset, asset: Asset) -> None:
    products = {text.strip().lower() for text in (text_value(ds, tag) for tag in _PRODUCT_TAGS) if text}
    if not products:
        return
    for kind in ("institution", "device", "text"):
        values = asset.identifiers.get(kind)
        if values:
            values.difference_update({v for v in values if any(v.strip().lower() in p for p in products)})


def directory_patient_keys(ds: Dataset) -> list[str]:
    """For each DICOMDIR record, the patient key of the PATIENT record above it,
    found by following the record offsets from the root."""
    records = list(ds.get("DirectoryRecordSequence") or [])
    by_offset = {getattr(item, "seq_item_tell", None): i for i, item in enumerate(records)}
    keys = [""] * len(records)
    seen: set[int] = set()

    def visit(offset: int, key: str) -> None:
        while offset and offset in by_offset:
            i = by_offset[offset]
            if i in seen:
                return
            seen.add(i)
            record = records[i]
            own = key
            if str(record.get("DirectoryRecordType", "")).strip() == "PATIENT":
                own = patient_key(record) or key
            keys[i] = own
            lower = record.get("OffsetOfReferencedLowerLevelDirectoryEntity")
            if lower:
                visit(int(lower), own)
            offset = int(record.get("OffsetOfTheNextDirectoryRecord") or 0)

    visit(int(ds.get("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity") or 0), "")
    return keys


@hookimpl
def medscrub_apply_rules(asset: Asset, rules, context) -> bool | None:
    if asset.format != FORMAT:
        return None
    scrub_asset(asset, context)
    return True


@hookimpl
def medscrub_get_volume(asset: Asset, context):
    if asset.format != FORMAT:
        return None
    return get_volume(asset.data)


@hookimpl
def medscrub_put_volume(asset: Asset, volume, context) -> bool | None:
    if asset.format != FORMAT:
        return None
    put_volume(asset.data, volume)
    return True


_SEVERITY = {None: 0, "possible": 1, "yes": 2}


@hookimpl
def medscrub_inspect(asset: Asset, context) -> None:
    if asset.format != FORMAT:
        return
    status = max((burned_in_status(ds) for ds in datasets_of(asset.data)), key=_SEVERITY.__getitem__)
    if status is None:
        return
    asset.flags["burned_in_text"] = status
    cleaners = {getattr(c, "name", c) for c in getattr(context, "cleaners", ())}
    if ERASE_TEXT not in cleaners and options_of(context).burned_in == "quarantine":
        asset.quarantine = (
            f"{'shows' if status == 'yes' else 'may show'} burned-in text and no erase-text cleaner runs "
            "(dicom.burned_in = 'quarantine')"
        )


def pseudonymous_name(ds: Dataset, item_id: str, context) -> str | None:
    state = _state(ds)
    if state is None or state.dicomdir:
        return None
    uid = context.pseudonyms.uid
    patient = context.patient_pseudonym(state.key) if state.key else "unknown-patient"
    study = uid(state.study) if state.study else "unknown-study"
    series = uid(state.series) if state.series else "unknown-series"
    sop = uid(state.sop) if state.sop else uid("medscrub-item:" + item_id)
    return f"{patient}/{study}/{series}/{sop}.dcm"


@hookimpl
def medscrub_output_name(asset: Asset, context) -> str | None:
    if asset.format != FORMAT:
        return None
    return pseudonymous_name(datasets_of(asset.data)[0], asset.item.inputs[0], context)


def _write_one(ds: Dataset, path: Path, sink) -> None:
    state = _state(ds)
    if state is not None and state.dicomdir:
        write_dicomdir(ds, path)
        return
    samples = write_file(ds, path)
    if samples and hasattr(sink, "opaque"):
        sink.opaque(path, samples)  # pixel samples: the core's leak check reads the rest


@hookimpl
def medscrub_write(asset: Asset, sink, context) -> bool | None:
    if asset.format != FORMAT:
        return None
    if isinstance(asset.data, DicomSeries):
        pseudonymous = context.recipe.output.naming == "pseudonymous"
        series = asset.data
        for ds, member, source in zip(series.datasets, series.ids, series.paths, strict=True):
            name = (pseudonymous and pseudonymous_name(ds, member, context)) or member
            _write_one(ds, sink.path(name, source=source, from_root=True), sink)
        return True
    state = _state(asset.data)
    if state is not None and state.dropped:
        return True  # nothing to write; the reason is recorded as a "drop" change
    _write_one(asset.data, sink.path(), sink)
    return True


@hookimpl
def medscrub_verify(output: Path, original: Path | None, format: str, context):
    if format != FORMAT:
        return None
    return verify_output(output, original, context)
