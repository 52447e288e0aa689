"""``medscrub_apply_rules`` for each of this plugin's formats."""

from __future__ import annotations

import re

from medscrub import Asset

from .clean import PROFILE, SITE, Dates, JsonCleaner, clean_header, clean_table, own_patient
from .identifiers import forget
from .layout import Layout, layout_for
from .profile import tsv_default
from .reader import FileData, JsonData, NiftiData, TableData, TextData
from .rules import SiteRules
from .writer import replaced_text


def _relabeller(layout: Layout, asset: Asset, context):
    path = asset.item.path
    if layout.root_of(path) is None or not (layout.relabel_subjects or layout.relabel_sessions):
        return None
    subject = layout.subject_of(path)
    return lambda text: layout.relabel(text, path, context, subject)


def _flag_many_ids(layout: Layout, asset: Asset) -> None:
    path = asset.item.path
    label = layout.subject_of(path)
    if label is None or layout.options.patient_key != "auto":
        return
    subject = layout.subject(path, label)
    if len(subject.distinct_ids) > 1:
        asset.flags["patient-key"] = (
            f"the sidecars of this subject name {len(subject.distinct_ids)} different patients; "
            "its label follows the first, each sidecar's dates its own"
        )


def apply_rules(asset: Asset, rules, context) -> bool:
    layout = layout_for(context)
    path = asset.item.path
    data = asset.data
    relabel = _relabeller(layout, asset, context)
    if isinstance(data, NiftiData):
        key = layout.patient_key_for(path)
        kept = clean_header(asset, data.nifti, SiteRules(rules, "nifti"), SiteRules(rules, "bids-json"), context,
                            Dates.make(context, key), relabel)
        forget(asset, kept)
    elif isinstance(data, JsonData):
        _apply_json(asset, data, rules, context, layout, relabel)
    elif isinstance(data, TableData):
        _apply_table(asset, data, rules, context, layout)
    elif isinstance(data, TextData):
        _apply_text(asset, data, layout, relabel)
    elif isinstance(data, FileData):
        pass  # numbers only, checked when read
    else:
        return False
    _flag_many_ids(layout, asset)
    return True


def _apply_json(asset: Asset, data: JsonData, rules, context, layout: Layout, relabel) -> None:
    if data.kind == "columns":
        # participants.json and the like describe TSV columns: a column the
        # TSV loses is not described any more.
        site = SiteRules(rules, "bids-tsv")
        for key in list(data.obj):
            rule = site.find(f"tsv:{key}")
            action = rule.action if rule is not None else tsv_default(key)
            if action == "remove":
                del data.obj[key]
                asset.record("remove", f"column description {key}", SITE if rule is not None else PROFILE)
        if relabel is not None:
            data.obj = JsonCleaner(asset, context, SiteRules(rules, "bids-json"), Dates.make(context, None),
                                   relabel=relabel).relabelled_tree(data.obj)
        return
    own = own_patient(data.obj) if data.kind == "sidecar" else None
    key = layout.patient_key_for(asset.item.path, own) if data.kind == "sidecar" else None
    secret = sorted(asset.identifiers.get("name", set()) | asset.identifiers.get("id", set()))
    cleaner = JsonCleaner(asset, context, SiteRules(rules, "bids-json"), Dates.make(context, key),
                          relabel=relabel, secret_values=secret)
    data.obj = cleaner.clean(data.obj)
    forget(asset, cleaner.kept)


def _apply_table(asset: Asset, data: TableData, rules, context, layout: Layout) -> None:
    path = asset.item.path
    name = path.name
    table = data.table
    subject = layout.subject_of(path)
    relabelling = layout.root_of(path) is not None and (layout.relabel_subjects or layout.relabel_sessions)
    columns = table.columns

    def column(name: str) -> int | None:
        return columns.index(name) if name in columns else None

    own_dates = Dates.make(context, layout.patient_key_for(path))
    if name == "participants.tsv" and column("participant_id") is not None:
        c = column("participant_id")

        def row_dates(row):
            m = re.fullmatch(r"sub-([A-Za-z0-9]+)", row[c].strip())
            return Dates.make(context, layout.subject(path, m.group(1)).key) if m else Dates.make(context, None)
    elif name.endswith("_scans.tsv") and column("filename") is not None:
        c = column("filename")

        def row_dates(row):
            return Dates.make(context, layout.patient_key_for(path.parent / row[c].strip()))
    else:
        def row_dates(row):
            return own_dates

    def relabel(col: str, value: str) -> str:
        return layout.relabel(value, path, context, subject)

    kept = clean_table(asset, table, SiteRules(rules, "bids-tsv"), context, row_dates,
                       relabel if relabelling else None, layout.options.age_cap)
    forget(asset, kept)


def _apply_text(asset: Asset, data: TextData, layout: Layout, relabel) -> None:
    if data.free_text and layout.options.text_files == "replace":
        data.content = replaced_text(asset.item.path.name)
        asset.record("replace", "free text", PROFILE, "may carry PHI")
    elif data.free_text and layout.options.text_files == "drop":
        data.content = None
        asset.record("drop", "free text", PROFILE, "may carry PHI")
    elif relabel is not None and data.content is not None:
        text = data.content.decode("utf-8", "surrogateescape")
        new = relabel(text)
        if new != text:
            data.content = new.encode("utf-8", "surrogateescape")
            asset.record("pseudonymise", "text", PROFILE, "BIDS labels")
