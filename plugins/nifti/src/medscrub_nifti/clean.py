"""Applying the profile and the site rules to headers, sidecars and TSVs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from medscrub import Asset, Rule

from .dates import is_compact_date, is_iso_date, shift_date
from .header import STRUCTURAL_EXTENSIONS, TEXT_FIELDS, NiftiFile, padded_content
from .identifiers import forms, remember, word_pattern
from .profile import WELL_KNOWN_UID_ROOT, json_default, normalise_column, tsv_default
from .rules import SiteRules

PROFILE = "nifti-bids-profile"
SITE = "site"


@dataclass
class Dates:
    """The date policy for one patient key."""

    policy: str  # remove | shift | keep
    key: str | None
    offset: int | None = None

    @classmethod
    def make(cls, context, key: str | None) -> Dates:
        offset = context.pseudonyms.date_offset(key) if key and context.date_policy == "shift" else None
        return cls(context.date_policy, key, offset)

    def shift(self, value: str) -> str | None:
        return None if self.offset is None else shift_date(value, self.offset)


def _rule_value(rule: Rule, name: str, value: object, context, dates: Dates, patient_key: str | None):
    """The new value under a site rule; ``...`` (Ellipsis) removes the element."""
    action = rule.action
    text = "" if value is None else str(value)
    if action == "remove":
        return ...
    if action == "empty":
        return ""
    if action == "replace":
        return rule.value
    if action == "hash":
        return context.pseudonyms.hash(name, text)
    if action == "pseudonymise":
        if name in ("PatientID", "PatientName", "participant_id") and patient_key:
            return context.patient_pseudonym(patient_key)
        return context.pseudonyms.pseudonym(name, text)
    if action == "shift":
        shifted = dates.shift(text) if isinstance(value, str) else None
        return ... if shifted is None else shifted
    return value  # keep


# -- JSON ------------------------------------------------------------------------


@dataclass
class JsonCleaner:
    """Cleans one JSON object (a sidecar or a JSON header extension)."""

    asset: Asset
    context: object
    site: SiteRules
    dates: Dates
    place: str = ""  # prefix for change records: "" or "extension mrs: "
    relabel: Callable[[str], str] | None = None
    secret_values: list[str] = field(default_factory=list)  # the patient's own values, cut from descriptors
    kept: list[tuple[str, str]] = field(default_factory=list)

    def clean(self, obj: dict) -> dict:
        self._words = word_pattern(self.secret_values)
        return self._dict(obj, "")

    def _dict(self, obj: dict, path: str) -> dict:
        out = {}
        for key, value in obj.items():
            new = self._element(str(key), value, f"{path}{key}")
            if new is not ...:
                out[key] = new
        return out

    def _element(self, key: str, value, path: str):
        place = self.place + path
        rule = self.site.find(key)
        if rule is not None:
            new = _rule_value(rule, key, value, self.context, self.dates, self.dates.key)
            if rule.action == "keep":
                self.kept += [f for v in _strings(value) for f in forms(_json_kind(key, v), v)]
                return self._relabelled(value, place)
            self.asset.record("remove" if new is ... else rule.action, place, SITE)
            return new
        action = json_default(key, value)
        if action == "remove":
            self.asset.record("remove", place, PROFILE)
            return ...
        if action == "uid":
            return self._uid(value, place)
        if action == "date" or (action == "keep" and isinstance(value, str) and is_iso_date(value)):
            return self._date(value, place)
        if action == "time":
            if self.dates.policy == "remove":
                self.asset.record("remove", place, PROFILE, "time of day")
                return ...
            return value
        if isinstance(value, dict):
            return self._dict(value, path + ".")
        if isinstance(value, list):
            return [self._list_item(key, v, f"{path}[{n}]") for n, v in enumerate(value)]
        if isinstance(value, str):
            return self._text(value, place)
        return value

    def _list_item(self, key: str, value, path: str):
        if isinstance(value, dict):
            return self._dict(value, path + ".")
        if isinstance(value, str):
            if is_iso_date(value):
                new = self._date(value, self.place + path)
                return None if new is ... else new
            return self._text(value, self.place + path)
        return value

    def _text(self, value: str, place: str) -> str:
        if self._words is not None and self._words.search(value):
            value = self._words.sub("", value).strip()
            self.asset.record("clean", place, PROFILE, "patient's identifying values cut out")
        return self._relabelled(value, place)

    def _relabelled(self, value, place: str):
        if self.relabel is None:
            return value
        if isinstance(value, str):
            new = self.relabel(value)
            if new != value:
                self.asset.record("pseudonymise", place, PROFILE, "BIDS labels")
            return new
        if isinstance(value, list):
            return [self._relabelled(v, place) for v in value]
        return value

    def relabelled_tree(self, value):
        """Every string at any depth relabelled, nothing else touched."""
        if isinstance(value, dict):
            return {k: self.relabelled_tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.relabelled_tree(v) for v in value]
        return self._relabelled(value, "column descriptions") if isinstance(value, str) else value

    def _uid(self, value, place: str):
        def one(v):
            if isinstance(v, str) and v.strip() and not v.startswith(WELL_KNOWN_UID_ROOT):
                return self.context.pseudonyms.uid(v)
            return v

        new = [one(v) for v in value] if isinstance(value, list) else one(value)
        if new != value:
            self.asset.record("uid", place, PROFILE)
        return new

    def _date(self, value, place: str):
        if self.dates.policy == "keep":
            return value
        if self.dates.policy == "shift" and isinstance(value, str):
            shifted = self.dates.shift(value)
            if shifted is not None:
                self.asset.record("shift", place, PROFILE, "patient's keyed offset")
                return shifted
        self.asset.record("remove", place, PROFILE, "date" if self.dates.policy == "remove" else "date: no patient key")
        return ...


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return [] if value is None else [str(value)]


def remember_json(asset: Asset, obj: dict, policy: str) -> list[str]:
    """Remember the identifying values of a sidecar; return the patient's own
    values (names, IDs) to cut from descriptors."""
    own: list[str] = []

    def walk(o) -> None:
        if isinstance(o, list):
            for v in o:
                walk(v)
        if not isinstance(o, dict):
            return
        for key, value in o.items():
            key = str(key)
            action = json_default(key, value)
            if action == "keep" and isinstance(value, dict | list):
                walk(value)
                continue
            if action not in ("remove", "date", "uid", "keep"):
                continue
            for text in _strings(value):
                if action == "uid":
                    if not text.startswith(WELL_KNOWN_UID_ROOT):
                        remember(asset, "uid", text)
                    continue
                kind = _json_kind(key, text)
                if action == "keep" and not is_iso_date(text):
                    continue
                if kind == "date" and policy == "keep":
                    continue
                found = remember(asset, kind, text)
                if kind in ("name", "id"):
                    own.extend(v for _, v in found)

    walk(obj)
    return own


def _json_kind(key: str, value: str) -> str:
    if is_iso_date(value) or is_compact_date(value) or key.endswith(("Date", "DateTime")):
        return "date"
    if key.endswith("Name") or key.endswith("Names") or key in ("PatientName", "OperatorsName"):
        return "institution" if key.startswith("Institution") or key == "StationName" else "name"
    if key.startswith("Institution"):
        return "address" if "Address" in key else "institution"
    if key in ("DeviceSerialNumber", "StationName", "DeviceID", "DeviceUID"):
        return "device"
    if key.endswith(("ID", "IDs", "Number")):
        return "id"
    if key.endswith("Address"):
        return "address"
    return "text"


# -- NIfTI headers -----------------------------------------------------------------


def clean_header(asset: Asset, nf: NiftiFile, site: SiteRules, json_site: SiteRules, context,
                 dates: Dates, relabel) -> list[tuple[str, str]]:
    """Clean the text fields and extensions; return the values a rule kept."""
    kept: list[tuple[str, str]] = []
    for name, size in TEXT_FIELDS[nf.kind].items():
        raw = nf.text(name)
        visible = nf.visible(name)
        rule = site.find(name)
        action = rule.action if rule is not None else ("empty" if raw.strip(b"\0 ") else "keep")
        source = SITE if rule is not None else PROFILE
        if action == "keep":
            if raw != visible:
                nf.header[name] = visible
                asset.record("clean", f"header {name}", source, "bytes after the end of the text")
            if rule is not None and visible:
                # Only the field's own text is exempt: a patient's name inside it is still a leak.
                kept.append(("text", visible.decode("latin-1").strip()))
            continue
        text = visible.decode("latin-1")
        if action in ("remove", "empty"):
            new = b""
        elif action == "replace":
            new = (rule.value or "").encode("latin-1", "replace")
        elif action == "hash":
            new = context.pseudonyms.hash(f"nifti:{name}", text, length=min(16, size)).encode()
        elif action == "pseudonymise":
            new = context.pseudonyms.pseudonym(f"nifti:{name}", text, length=min(12, size)).encode()
        else:  # check_rules refuses shift for header fields
            new = b""
        nf.header[name] = new[:size]
        asset.record(action if action != "remove" else "empty", f"header {name}", source)

    exts = []
    for n, ext in enumerate(nf.extensions):
        place = f"extension {n} ({ext.label})"
        data = ext.json()
        rule = site.find_extension(ext.code, ext.label, data is not None)
        if rule is not None and rule.action == "keep":
            kept += [("text", ext.text())]
            exts.append(ext)
            continue
        if rule is not None and rule.action == "remove":
            asset.record("drop", place, SITE)
            continue
        if data is not None:
            own_key = own_patient(data)
            cleaner = JsonCleaner(asset, context, json_site, Dates.make(context, own_key) if own_key else dates,
                                  place=f"{place}: ", relabel=relabel, secret_values=_own_values(asset))
            cleaned = cleaner.clean(data)
            kept += cleaner.kept
            ext.content = padded_content(dump_json(cleaned, compact=True))
            exts.append(ext)
            continue
        if ext.code in STRUCTURAL_EXTENSIONS:
            exts.append(ext)
            continue
        asset.record("drop", place, PROFILE)
    nf.extensions = exts
    return kept


def own_patient(data: dict) -> str | None:
    for key in ("PatientID", "PatientName"):
        value = data.get(key)
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()
    return None


def _own_values(asset: Asset) -> list[str]:
    return sorted(asset.identifiers.get("name", set()) | asset.identifiers.get("id", set()))


def dump_json(obj, indent: str | int | None = 4, compact: bool = False) -> bytes:
    import json

    if compact:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return (json.dumps(obj, ensure_ascii=False, indent=indent) + "\n").encode("utf-8")


# -- TSV -----------------------------------------------------------------------------


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    newline: str = "\n"

    @classmethod
    def parse(cls, text: str) -> Table:
        newline = "\r\n" if "\r\n" in text else "\n"
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return cls([], [], newline)
        columns = lines[0].split("\t")
        rows = [line.split("\t") for line in lines[1:]]
        for row in rows:
            row.extend(["n/a"] * (len(columns) - len(row)))
        return cls(columns, rows, newline)

    def render(self) -> bytes:
        lines = ["\t".join(self.columns)] + ["\t".join(r[: len(self.columns)]) for r in self.rows]
        return (self.newline.join(lines) + self.newline).encode("utf-8")


def column_kind(column: str) -> str:
    norm = normalise_column(column)
    if "name" in norm or "initials" in norm:
        return "name"
    if "birth" in norm or "dob" in norm:
        return "date"
    if any(w in norm for w in ("address", "street", "zip", "post")):
        return "address"
    if any(w in norm for w in ("comment", "note", "remark", "freetext")):
        return "text"
    return "id"


def remember_table(asset: Asset, table: Table, site: SiteRules, policy: str) -> None:
    for c, column in enumerate(table.columns):
        rule = site.find(f"tsv:{column}")
        action = rule.action if rule is not None else tsv_default(column)
        if action == "keep" and rule is None:
            continue
        if action == "date" and policy == "keep":
            continue
        if action in ("participant_id", "session_id", "filename", "age", "keep"):
            continue
        kind = "date" if action in ("date", "shift") else column_kind(column)
        for row in table.rows:
            if row[c] and row[c] != "n/a":
                remember(asset, kind, row[c])


def clean_table(asset: Asset, table: Table, site: SiteRules, context, row_dates: Callable[[list[str]], Dates],
                relabel: Callable[[str, str], str] | None, age_cap: int | None) -> list[tuple[str, str]]:
    """Clean a TSV in place; ``row_dates(row)`` gives the dates of a row's patient;
    ``relabel(column, value)`` relabels a cell.  Return the values a rule kept."""
    keep_columns = []
    kept: list[tuple[str, str]] = []
    for c, column in enumerate(table.columns):
        place = f"column {column}"
        rule = site.find(f"tsv:{column}")
        if rule is not None:
            if rule.action == "remove":
                asset.record("remove", place, SITE)
                continue
            keep_columns.append(c)
            if rule.action == "keep":
                kept += [f for row in table.rows for f in forms(column_kind(column), row[c])]
                if relabel is not None:
                    for row in table.rows:
                        row[c] = relabel(column, row[c])
                continue
            for row in table.rows:
                if row[c] == "n/a":
                    continue
                new = _rule_value(rule, column, row[c], context, row_dates(row), None)
                row[c] = "n/a" if new is ... or new == "" else str(new)
            asset.record(rule.action, place, SITE)
            continue
        action = tsv_default(column)
        if action == "remove":
            asset.record("remove", place, PROFILE)
            continue
        keep_columns.append(c)
        if action in ("participant_id", "session_id", "filename"):
            if relabel is not None:
                changed = False
                for row in table.rows:
                    new = relabel(column, row[c])
                    changed |= new != row[c]
                    row[c] = new
                if changed:
                    asset.record("pseudonymise", place, PROFILE, "BIDS labels")
        elif action == "age" and age_cap is not None:
            capped = 0
            for row in table.rows:
                try:
                    if float(row[c].rstrip("+")) > age_cap:
                        row[c] = str(age_cap)
                        capped += 1
                except ValueError:
                    continue
            if capped:
                asset.record("replace", place, PROFILE, f"{capped} ages above {age_cap}")
        elif action == "date":
            if context.date_policy == "keep":
                continue
            counts = {"shift": 0, "remove": 0}
            for row in table.rows:
                if row[c] == "n/a":
                    continue
                shifted = row_dates(row).shift(row[c]) if context.date_policy == "shift" else None
                row[c] = shifted if shifted is not None else "n/a"
                counts["shift" if shifted is not None else "remove"] += 1
            for what, n in counts.items():
                if n:
                    asset.record(what if what == "shift" else "empty", place, PROFILE, f"{n} values")
    table.columns = [table.columns[c] for c in keep_columns]
    table.rows = [[row[c] for c in keep_columns] for row in table.rows]
    return kept

