"""The PS3.15 profile engine: one decision per element, applied at every depth.

:class:`Plan` turns Table E.1-1, the options, the date policy and the site
rules into one decision per (tag, VR), computed the first time a tag is seen
and then looked up in a dict.  :class:`Scrubber` walks a dataset once, in
place, and applies the decisions; it reads (converts) only the elements it
changes and the sequences it enters (these with :func:`.parse.sequence`), so
untouched values are written back as the bytes they were read as.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydicom import Dataset, Sequence
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue

from medscrub import MedscrubError

from .dates import shift_da, shift_dt
from .descriptors import Terms
from .options import DicomOptions
from .parse import sequence
from .raw import Values, as_value, encoded, fast_vr, put, pydicom_defaults, text_value, values_of
from .rules import FLOAT_VRS, INT_VRS, TEXT_VRS, SiteRule, SiteRules, value_problem
from .table import PROFILE_NAME, Row, load_table

# Actions of a decision.  The manifest words (medscrub.ACTIONS) are chosen
# when a change is recorded.
KEEP = "keep"
REMOVE = "remove"
EMPTY = "empty"
DUMMY = "dummy"
UID = "uid"
CLEAN = "clean"
SHIFT = "shift"
PATIENT_ID = "patient-id"
PATIENT_NAME = "patient-name"
PERSON = "person"  # a PN inside cleaned structured content
REPLACE = "replace"
HASH = "hash"
PSEUDONYMISE = "pseudonymise"

# Walk modes: "" is the profile as the table says; "clean" is the inside of
# a sequence the profile cleans (structured content, graphic annotations).
MODES = ("", "clean", "dummy")

PATIENT_ID_TAG = 0x00100020
PATIENT_NAME_TAG = 0x00100010
BIRTH_DATE_TAG = 0x00100030
DIRECTORY_RECORDS_TAG = 0x00041220

# Compound actions of Table E.1-1, resolved without IOD type tables to the
# choice that conforms whatever the attribute's type (see docs/dicom.md).
COMPOUND = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U*"}

UNKNOWN_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC"})

# Text attributes outside Table E.1-1 that hold a vocabulary a device or a
# coding scheme sets, not words a person types: codes, products, and
# technical labels that are Type 1 in common images (removing them would
# break every coded entry and many CT and MR objects).
STRUCTURAL_TEXT = frozenset({
    # coded entries
    "CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning", "LongCodeValue",
    "ContextIdentifier", "MappingResource", "MappingResourceName", "CodingSchemeName",
    "CodingSchemeResponsibleOrganization", "CodingSchemeExternalID", "CodingSchemeRegistry",
    "TemplateIdentifier",
    # the product
    "Manufacturer", "ManufacturerModelName", "SoftwareVersions",
    # technical labels
    "RescaleType", "LUTExplanation", "LUTLabel", "WindowCenterWidthExplanation", "StackID",
    "DimensionDescriptionLabel", "SequenceName", "PulseSequenceName", "ReceiveCoilName", "TransmitCoilName",
    "ImagedNucleus", "ConvolutionKernel", "FilterType",
})

# UI attributes that name a class, a transfer syntax or a coding scheme, not
# an instance: kept whatever their value.
CLASS_UIDS = frozenset({
    "AffectedSOPClassUID", "AvailableTransferSyntaxUID", "CodingSchemeUID", "ContextUID",
    "EncryptedContentTransferSyntaxUID", "FlowTransferSyntaxUID", "ImplementationClassUID",
    "MACCalculationTransferSyntaxUID", "MappingResourceUID", "MediaStorageSOPClassUID",
    "OriginalSpecializedSOPClassUID", "PertinentSOPClassesInSeries", "PertinentSOPClassesInStudy",
    "RTVCommunicationSOPClassUID", "ReferencedRelatedGeneralSOPClassUIDInFile", "ReferencedSOPClassUID",
    "ReferencedSOPClassUIDInFile", "ReferencedTransferSyntaxUIDInFile", "RelatedGeneralSOPClassUID",
    "RequestedSOPClassUID", "SOPClassUID", "SOPClassesInStudy", "SOPClassesSupported",
    "StoredInstanceTransferSyntaxUID", "TransferSyntaxUID",
})

DICOM_ROOT = "1.2.840.10008."
# VRs whose values inside a removed sequence are remembered for the leak check
_TREE_VRS = frozenset({"PN", "LO", "SH", "DA", "DT", "AE", "ST", "LT", "UT", "UC"})

# Dummy values for D, per VR: valid, and never identifying.
DUMMIES: dict[str, object] = {
    "PN": "ANONYMOUS", "LO": "REMOVED", "SH": "REMOVED", "LT": "REMOVED", "ST": "REMOVED", "UT": "REMOVED",
    "UC": "REMOVED", "CS": "REMOVED", "AE": "REMOVED", "UR": "", "DA": "19000101", "DT": "19000101000000",
    "TM": "000000", "AS": "000D", "DS": "0", "IS": "0", "US": 0, "SS": 0, "UL": 0, "SL": 0, "SV": 0, "UV": 0,
    "FL": 0.0, "FD": 0.0, "OB": b"\0\0", "OW": b"\0\0", "UN": b"\0\0",
}
DUMMY_STRINGS = frozenset(v for v in DUMMIES.values() if isinstance(v, str) and v)


@dataclass(frozen=True, slots=True)
class Decision:
    action: str
    source: str
    vr: str  # the effective VR
    keyword: str
    kind: str | None  # what asset.remember calls the value: name, id, date, ...
    value: str | None = None  # for replace
    detail: str = ""


def is_well_known_uid(value: str) -> bool:
    return value in UID_dictionary or value.startswith(DICOM_ROOT)


def kind_for(keyword: str, vr: str) -> str | None:
    """The identifier kind of an element's value, for the leak check."""
    if vr == "PN":
        return "name"
    if vr in ("DA", "DT"):
        return "date"
    if vr == "UI":
        return "uid"
    if vr not in TEXT_VRS:
        return None
    k = keyword.lower()
    if "institution" in k or "organization" in k:
        return "institution"
    if "address" in k or "telephone" in k or "telecom" in k:
        return "address"
    if "station" in k or "device" in k or "serial" in k or "detector" in k:
        return "device"
    if k.endswith(("id", "ids", "number", "numbers")):
        return "id"
    return "text"


def effective_vr(tag: int, vr: str | None) -> str:
    if vr and vr != "UN":
        return vr
    try:
        found = dictionary_VR(tag)
    except KeyError:
        return vr or "UN"
    return found.split(" or ")[-1] if " or " in found else found


def resolve_row(row: Row, enabled: set[str]) -> str:
    """The single action of a table row under the enabled options.

    When two enabled options override a row differently, C (clean) wins
    over K (keep): the more protective reading."""
    overrides = {action for option, action in row.options.items() if option in enabled}
    if "C" in overrides:
        return "C"
    if "K" in overrides:
        return "K"
    return COMPOUND.get(row.basic, row.basic)


class Plan:
    """Every decision of a run, compiled once per process and cached by tag."""

    def __init__(self, options: DicomOptions, date_policy: str, site: SiteRules | None = None) -> None:
        table = load_table()
        self.table = table
        self.options = options
        self.policy = date_policy
        self.site = site or SiteRules([])
        enabled = set(options.enabled())
        if date_policy == "keep":
            enabled.add("retain_longitudinal_full_dates")
        elif date_policy == "shift":
            enabled.add("retain_longitudinal_modified_dates")
        self.enabled = frozenset(enabled)
        self.rows = {tag: resolve_row(row, enabled) for tag, row in table.rows.items()}
        # Compound rows whose attribute is a sequence: D (its items kept, with
        # dummy values) conforms whatever the sequence's type, where Z (no
        # item) breaks a Type 3 or Type 1 sequence and X a Type 2 or Type 1.
        self.compound = frozenset(tag for tag, row in table.rows.items() if row.basic in COMPOUND and row.basic != "X/Z/U*")
        self.patterns = tuple((p.mask, p.value, resolve_row(p.row, enabled)) for p in table.patterns)
        self.private_action = resolve_row(table.private, enabled)
        self.caches: dict[str, dict] = {mode: {} for mode in MODES}
        self.private_cache: dict[tuple, Decision] = {}
        self.cleans_text = bool(
            {"clean_descriptors", "clean_structured_content", "clean_graphics", "retain_patient_characteristics",
             "retain_device_identity"} & enabled
        )

    # -- deciding ------------------------------------------------------
    def decide(self, tag: int, vr: str | None, mode: str = "") -> Decision:
        cache = self.caches[mode]
        tag = tag + 0  # a plain int key: BaseTag compares in Python
        found = cache.get((tag, vr))
        if found is None:
            found = cache[(tag, vr)] = self._decide(tag, vr, mode)
        return found

    def decide_private(self, tag: int, vr: str | None, mode: str, creator: str | None) -> Decision:
        key = (tag + 0, vr, mode, creator)
        found = self.private_cache.get(key)
        if found is None:
            found = self.private_cache[key] = self._decide_private(int(tag), vr, mode, creator)
        return found

    def _site(self, tag: int, vr: str, keyword: str, kind: str | None, creator: str | None) -> Decision | None:
        if not self.site:
            return None
        match: SiteRule | None = self.site.match(tag, vr, creator)
        if match is None:
            return None
        rule = match.rule
        problem = value_problem(rule.action, vr, rule.value)
        if problem:
            # a pattern or VR selector met an element its action cannot serve
            return Decision(REMOVE, match.source, vr, keyword, kind, detail=f"site rule {rule.match!r}: {problem}")
        action = {"keep": KEEP, "remove": REMOVE, "empty": EMPTY, "replace": REPLACE, "hash": HASH,
                  "shift": SHIFT, "pseudonymise": PSEUDONYMISE}[rule.action]
        if action == PSEUDONYMISE and tag == PATIENT_ID_TAG:
            action = PATIENT_ID
        elif action == PSEUDONYMISE and tag == PATIENT_NAME_TAG:
            action = PATIENT_NAME
        return Decision(action, match.source, vr, keyword, kind, rule.value, f"site rule {rule.match!r}")

    def _decide(self, tag: int, raw_vr: str | None, mode: str) -> Decision:
        vr = effective_vr(tag, raw_vr)
        keyword = keyword_for_tag(tag)
        kind = kind_for(keyword, vr)
        site = self._site(tag, vr, keyword, kind, None)
        if site is not None:
            return site
        group, element = tag >> 16, tag & 0xFFFF

        def made(action: str, detail: str = "", source: str = PROFILE_NAME) -> Decision:
            return Decision(action, source, vr, keyword, kind, None, detail)

        if element == 0:
            return made(REMOVE, "group length")
        if tag == PATIENT_ID_TAG:
            return made(PATIENT_ID)
        if tag == PATIENT_NAME_TAG:
            return made(PATIENT_NAME if self.options.patient_name == "pseudonym" else EMPTY)
        if tag == BIRTH_DATE_TAG:
            if "retain_patient_characteristics" in self.enabled:
                return made({"keep": KEEP, "shift": SHIFT}.get(self.policy, EMPTY), "patient characteristics")
            return made(EMPTY)
        if 0x6000 <= group <= 0x60FF:
            return made(REMOVE, "overlay: a bitmap cannot be cleaned, so the whole overlay goes")
        code = self.rows.get(tag)
        if code is None:
            for mask, value, action in self.patterns:
                if tag & mask == value:
                    code = action
                    break
        if code is not None:
            if vr == "SQ" and tag in self.compound and code not in ("K", "C", "U*"):
                code = "D"
            return self._from_code(code, vr, mode, made)
        return self._unknown(vr, keyword, mode, made)

    def _from_code(self, code: str, vr: str, mode: str, made: Callable[..., Decision]) -> Decision:
        if code in ("K", "U*"):
            return made(KEEP)
        if mode == "clean" and code in ("D", "X", "Z") and vr in UNKNOWN_TEXT_VRS:
            return made(PERSON if vr == "PN" else CLEAN, "cleaned content")
        if mode == "dummy" and vr != "SQ" and code in ("X", "Z"):
            code = "D"  # inside a dummy sequence every value stays, as a dummy
        if code == "X":
            return made(REMOVE)
        if code == "Z":
            return made(EMPTY)
        if code == "D":
            return made(UID if vr == "UI" else DUMMY)
        if code == "U":
            return made(UID if vr == "UI" else DUMMY)
        if code == "C":
            if vr == "SQ":
                return made(CLEAN)
            if vr in ("DA", "DT"):
                return made(SHIFT)
            if vr == "UI":
                return made(KEEP if "retain_uids" in self.enabled else UID)
            if vr == "PN":
                return made(PERSON)
            if vr in TEXT_VRS:
                return made(CLEAN)
            return made(KEEP, "nothing to clean in this VR")
        raise MedscrubError(f"unknown profile action {code!r} in the table")

    def _unknown(self, vr: str, keyword: str, mode: str, made: Callable[..., Decision]) -> Decision:
        """An element that Table E.1-1 does not list."""
        source = "dicom: outside Table E.1-1"
        if not keyword:
            return made(REMOVE, "no dictionary entry", source)
        if vr == "UI":
            if keyword in CLASS_UIDS or "retain_uids" in self.enabled:
                return made(KEEP, source=source)
            return made(UID, source=source)
        if vr in ("DA", "DT"):
            if keyword in ("ContextGroupVersion", "ContextGroupLocalVersion"):
                return made(KEEP, source=source)
            return made({"keep": KEEP, "shift": SHIFT}.get(self.policy, DUMMY if mode == "dummy" else EMPTY),
                        source=source)
        if vr in UNKNOWN_TEXT_VRS:
            if mode == "dummy":  # codes too: a dummy sequence keeps its shape, not its meaning
                return made(DUMMY, "inside a dummy sequence", source)
            if keyword in STRUCTURAL_TEXT:
                return made(KEEP, source=source)
            if mode == "clean":
                return made(PERSON if vr == "PN" else CLEAN, "cleaned content", source)
            if vr == "PN" or self.options.unknown_text == "remove":
                # a dummy, not an empty value: conformant whatever the type
                return made(DUMMY, "text outside Table E.1-1", source)
        return made(KEEP, source=source)

    def _decide_private(self, tag: int, raw_vr: str | None, mode: str, creator: str | None) -> Decision:
        group, element = tag >> 16, tag & 0xFFFF
        safe_vr = self.table.safe_private.get((creator, group, element & 0xFF)) if creator is not None else None
        vr = raw_vr if raw_vr and raw_vr != "UN" else (safe_vr if safe_vr and " " not in safe_vr and "/" not in safe_vr
                                                         else (raw_vr or "UN"))
        kind = kind_for("", vr) if vr != "UN" else None
        site = self._site(tag, vr, "", kind, creator)
        if site is not None:
            return site

        def made(action: str, detail: str = "") -> Decision:
            return Decision(action, PROFILE_NAME, vr, "", kind, None, detail)

        if element < 0x10 or group in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF):
            return made(REMOVE, "private group length or illegal private group")
        if element < 0x1000:
            return made(REMOVE, "private creator")  # kept only with a kept element of its block
        if self.private_action != "C" or safe_vr is None:
            return made(REMOVE, "private" if creator is not None else "private, no creator")
        if vr == "UI":
            return made(KEEP if "retain_uids" in self.enabled else UID, "safe private")
        if vr in ("DA", "DT"):
            return made({"keep": KEEP, "shift": SHIFT}.get(self.policy, EMPTY), "safe private")
        return made(KEEP, "safe private (Table E.3.10-1)")


def patient_key(ds: Dataset) -> str:
    """The original PatientID, else PatientName, else ""."""
    for tag in (PATIENT_ID_TAG, PATIENT_NAME_TAG):
        if tag in ds._dict:
            text = text_value(ds, tag).strip()
            if text:
                return text
    return ""


def _values(value: object) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def _delete(ds: Dataset, tag: int) -> None:
    """``del ds[tag]`` without its tag conversion, for all but the elements
    whose removal pydicom tracks (pixel data, private creators)."""
    if tag >> 16 == 0x7FE0 or (tag & 0x10000 and 0x10 <= tag & 0xFFFF <= 0xFF):
        del ds[tag]
    else:
        del ds._dict[tag]


# "(gggg,eeee) Keyword" of top-level elements, by (tag, keyword)
_TOP_PLACES: dict[tuple[int, str], str] = {}


def _place(prefix: str, tag: int, keyword: str) -> str:
    text = f"{prefix}({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{text} {keyword}" if keyword else text


class Scrubber:
    """Applies a plan to one dataset, in place.

    ``remember(kind, value)`` receives every identifying value that is
    changed (the leak check looks for them); ``record(action, place, source,
    detail)`` every change.
    """

    def __init__(
        self,
        plan: Plan,
        context,
        remember: Callable[[str, str], None],
        record: Callable[[str, str, str, str], None],
    ) -> None:
        self.plan = plan
        self.context = context
        self.pseudonyms = context.pseudonyms
        self.remember = remember
        self.record = record
        self.terms: Terms | None = None
        self._offsets: dict[str, int] = {}
        self.top_name = ""
        self.top_key = ""
        self.record_keys: list[str] | None = None  # DICOMDIR: each record's patient key
        self.mapped_uids: set[str] = set()
        self.fast = pydicom_defaults()  # values may be read and written as raw bytes

    # -- entry ---------------------------------------------------------
    def scrub(self, ds: Dataset, key: str) -> None:
        self.top_key = key
        if PATIENT_NAME_TAG in ds._dict:
            self.top_name = text_value(ds, PATIENT_NAME_TAG).strip()
        if self.plan.cleans_text:
            self.terms = Terms()
            self._collect_terms(ds, "")
        self.walk(ds, "", "", key)

    # -- walking -------------------------------------------------------
    def walk(self, ds: Dataset, prefix: str, mode: str, key: str) -> None:
        d = ds._dict
        if prefix and (PATIENT_ID_TAG in d or PATIENT_NAME_TAG in d):
            key = patient_key(ds) or key
        cache = self.plan.caches[mode]
        decide = self.plan.decide
        private = False
        values = Values(ds)
        for tag, elem in list(d.items()):
            if tag & 0x10000:
                private = True
                continue
            vr = elem.VR
            dec = cache.get((tag + 0, vr))  # + 0: a plain int, BaseTag compares in Python
            if dec is None:
                dec = decide(tag, vr, mode)
            if dec.action is KEEP:
                if dec.vr == "SQ":
                    self._recurse(ds, tag, prefix, mode, key)
                continue
            self.apply(ds, tag, dec, prefix, mode, key, values)
        if private:
            self._private(ds, prefix, mode, key, values)

    def _recurse(self, ds: Dataset, tag: int, prefix: str, mode: str, key: str) -> None:
        elem = self._element(ds, tag)
        if elem.VR != "SQ" or not elem.value:
            return
        here = f"{prefix}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        keys = self.record_keys if (tag == DIRECTORY_RECORDS_TAG and not prefix) else None
        for i, item in enumerate(elem.value):
            self.walk(item, f"{here}[{i}]>", mode, keys[i] if keys and i < len(keys) else key)

    def _element(self, ds: Dataset, tag: int) -> DataElement:
        """``ds[tag]``, with sequences converted by :func:`.parse.sequence`."""
        return sequence(ds, tag) if self.fast else ds[tag]

    def _creator(self, ds: Dataset, tag: int, values: Values) -> str:
        raw = ds._dict[tag]
        if self.fast and raw.__class__ is RawDataElement and raw.VR in ("LO", "UN", None):
            found = values_of(raw, "LO", values)  # pydicom reads every private creator as LO
            if found is not None and len(found) == 1:
                return found[0].strip()
        value = ds[tag].value
        return (value.decode("latin-1", "replace") if isinstance(value, bytes) else str(value or "")).strip()

    def _private(self, ds: Dataset, prefix: str, mode: str, key: str, values: Values) -> None:
        d = ds._dict
        creators: dict[tuple[int, int], str] = {}
        for tag in list(d):
            if tag & 0x10000 and 0x10 <= tag & 0xFFFF <= 0xFF:
                creators[(tag >> 16, tag & 0xFF)] = self._creator(ds, tag, values)
        kept: set[tuple[int, int]] = set()
        for tag in list(d):
            element = tag & 0xFFFF
            if not tag & 0x10000 or 0x10 <= element <= 0xFF:
                continue
            block = (tag >> 16, element >> 8)
            creator = creators.get(block) if element >= 0x1000 else None
            dec = self.plan.decide_private(tag, d[tag].VR, mode, creator)
            if dec.action is KEEP:
                kept.add(block)
                if dec.vr == "SQ" or ds[tag].VR == "SQ":
                    self._recurse(ds, tag, prefix, mode, key)
                continue
            self.apply(ds, tag, dec, prefix, mode, key, values)
            if tag in d:
                kept.add(block)
        for (group, block), _creator in creators.items():
            if (group, block) not in kept:
                tag = (group << 16) | block
                _delete(ds, tag)
                self.record("remove", _place(prefix, tag, ""), PROFILE_NAME, "private creator of a removed block")

    # -- applying ------------------------------------------------------
    def _done(self, word: str, prefix: str, tag: int, dec: Decision, detail: str) -> None:
        if prefix:
            place = _place(prefix, tag, dec.keyword)
        else:
            key = (tag + 0, dec.keyword)
            place = _TOP_PLACES.get(key)
            if place is None:
                place = _TOP_PLACES[key] = _place("", tag, dec.keyword)
        self.record(word, place, dec.source, detail)

    def apply(self, ds: Dataset, tag: int, dec: Decision, prefix: str, mode: str, key: str,
              values: Values | None = None) -> None:
        action = dec.action
        raw = ds._dict[tag]
        if values is None:
            values = Values(ds)
        if action == REMOVE or action == EMPTY:
            # Neither needs the value read (converted) unless it is remembered.
            if action == EMPTY and (raw.value is None or len(raw.value) == 0):
                return
            if dec.vr == "SQ" or raw.VR == "SQ":
                elem = self._element(ds, tag)
                for item in elem.value or ():
                    self._remember_tree(item)
                if action == REMOVE:
                    _delete(ds, tag)
                else:
                    elem.value = Sequence()
            else:
                if dec.kind:
                    for v in self._texts(ds, tag, raw):
                        self._remember_value(dec.kind, v)
                if action == REMOVE:
                    _delete(ds, tag)
                elif raw.__class__ is RawDataElement and self.fast and raw.VR != "UN":
                    put(ds, tag, raw, b"")  # (pydicom gives a public UN element its dictionary VR)
                else:
                    ds[tag] = DataElement(tag, raw.VR or dec.vr, None)
            self._done(action, prefix, tag, dec, dec.detail)
            return
        vr = fast_vr(raw, tag, dec.vr) if self.fast else None
        found = values_of(raw, vr, values) if vr is not None else None
        if found is not None:
            elem = None
            old = as_value(found)
            olds = found
        else:
            elem = self._element(ds, tag)
            vr = elem.VR
            if vr == "SQ":
                if action == CLEAN:
                    self._recurse(ds, tag, prefix, "clean", key)
                elif action == DUMMY:
                    # the items stay, every value in them a dummy (codes too)
                    self._recurse(ds, tag, prefix, "dummy", key)
                    self._done("replace", prefix, tag, dec, "items kept with dummy values")
                else:
                    self._remember(elem, dec)
                    _delete(ds, tag)
                    self._done("remove", prefix, tag, dec, f"{action} cannot act on a sequence")
                return
            old = elem.value
            olds = _values(old)
        where = (ds, tag, elem, vr, values, prefix, dec)
        if action == UID or (vr == "UI" and action in (DUMMY, HASH, PSEUDONYMISE)):
            new = [self.map_uid(str(v)) for v in olds]
            self._set(where, new, olds, "uid", "uid")
            return
        if action == DUMMY:
            if vr in ("DA", "DT") and self.plan.policy == "shift" and olds:
                shifted = self._shift(vr, olds, key)
                if shifted is not None:
                    self._set(where, shifted, olds, "shift", "date")
                    return
            dummy = DUMMIES.get(vr)
            self._set(where, [dummy] if dummy not in (None, "") else [], olds, "replace", dec.kind,
                      detail="dummy value")
            return
        if action == SHIFT:
            if vr == "TM":
                return
            if vr not in ("DA", "DT"):
                self._set(where, [], olds, "empty", dec.kind, detail="shift needs a date")
                return
            shifted = self._shift(vr, olds, key)
            if shifted is None:
                self._set(where, [], olds, "empty", "date", detail="unreadable date emptied")
            else:
                self._set(where, shifted, olds, "shift", "date")
            return
        if action == CLEAN:
            if vr in ("DA", "DT"):
                if self.plan.policy == "keep":
                    return
                shifted = self._shift(vr, olds, key) if self.plan.policy == "shift" else None
                self._set(where, shifted or [], olds, "shift" if shifted else "empty", "date")
                return
            terms = self.terms
            new = [terms.clean(str(v)) if terms is not None and v is not None else v for v in olds]
            self._set(where, new, olds, "clean", dec.kind)
            return
        if action == PATIENT_ID:
            original = str(old or "").strip()
            basis = original or key
            new = [self.context.patient_pseudonym(basis)] if basis else []
            self._set(where, new, olds, "pseudonymise", "id")
            return
        if action == PATIENT_NAME:
            new = [self.context.patient_pseudonym(key)] if key else []
            self._set(where, new, olds, "pseudonymise", "name")
            return
        if action == PERSON:
            new = [self._person(str(v)) for v in olds]
            self._set(where, new, olds, "pseudonymise", "name")
            return
        if action == REPLACE:
            parts = (dec.value or "").split("\\") if dec.value else []
            if vr in INT_VRS - {"IS"}:
                parts = [int(p) for p in parts]
            elif vr in FLOAT_VRS - {"DS"}:
                parts = [float(p) for p in parts]
            self._set(where, parts, olds, "replace", dec.kind)
            return
        if action in (HASH, PSEUDONYMISE):
            kind = dec.keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
            if action == HASH:
                new = [self.pseudonyms.hash(kind, str(v)) for v in olds]
                new = [v.upper() for v in new] if vr == "CS" else new
            else:
                new = [self.pseudonyms.pseudonym(kind, str(v), length=12) for v in olds]
            self._set(where, new, olds, "hash" if action == HASH else "pseudonymise", dec.kind)
            return
        raise MedscrubError(f"internal: no way to apply {action!r}")  # pragma: no cover

    def _set(self, where: tuple, new: list, old: list, word: str, kind: str | None, detail: str = "") -> None:
        """Replace an element's values by ``new`` (remembering the old ones
        that go): as raw bytes when :mod:`.raw` can encode them as pydicom
        would, else through pydicom."""
        if [str(v) for v in new] == [str(v) for v in old]:
            return
        ds, tag, elem, vr, values, prefix, dec = where
        if kind:
            keep = {str(v) for v in new}
            for v in old:
                if str(v) not in keep:
                    self._remember_value(kind, v)
        data = encoded(vr, new, values) if elem is None else None
        current = ds._dict[tag]
        if data is not None and current.__class__ is RawDataElement:
            put(ds, tag, current, data)
        else:
            if elem is None:
                elem = ds[tag]
            if not new:
                elem.value = None
            elif len(new) == 1:
                elem.value = new[0]
            else:
                elem.value = new
        self._done(word, prefix, tag, dec, detail or dec.detail)

    # -- values --------------------------------------------------------
    def map_uid(self, value: str) -> str:
        value = value.strip().rstrip("\0")
        # a value with no dot ("0", a placeholder) is no UID and names nothing:
        # mapping it would turn a placeholder into a reference to nowhere
        if not value or "." not in value or is_well_known_uid(value):
            return value
        self.mapped_uids.add(value)
        return self.pseudonyms.uid(value)

    def offset(self, key: str) -> int:
        found = self._offsets.get(key)
        if found is None:
            found = self._offsets[key] = self.pseudonyms.date_offset(key)
        return found

    def _shift(self, vr: str, values: list, key: str) -> list | None:
        days = self.offset(key)
        out = []
        for v in values:
            text = str(v)
            shifted = shift_da(text, days) if vr == "DA" else shift_dt(text, days)
            if shifted is None:
                return None
            out.append(shifted)
        return out

    def _person(self, name: str) -> str:
        if not name.strip():
            return name
        if self.top_name and name.strip() == self.top_name:
            return self.context.patient_pseudonym(self.top_key) if self.top_key else ""
        return self.pseudonyms.pseudonym("person", name.strip())

    def _remember_value(self, kind: str, value: object) -> None:
        text = str(value).strip() if value is not None else ""
        if not text or text in DUMMY_STRINGS or len(set(text)) == 1:
            return  # nothing, a dummy, or a placeholder such as "00000"
        self.remember(kind, text)
        if kind == "name":
            # Each part of a name identifies too.  Short parts ("Li", "CT1")
            # also occur innocently in paths and bytes: they go under
            # "name-part", which the byte scan skips and the parsed check
            # matches as whole words.
            for group in text.split("="):
                for part in group.split("^"):
                    part = part.strip()
                    if len(part) >= 5:
                        self.remember("name", part)
                    elif len(part) >= 2:
                        self.remember("name-part", part)
        elif kind == "date" and len(text) > 8 and text[:8].isdigit():
            self.remember("date", text[:8])

    def _remember(self, elem, dec: Decision) -> None:
        """Remember what an element held before it is removed or replaced."""
        if elem.VR == "SQ":
            for item in elem.value or ():
                self._remember_tree(item)
            return
        if dec.kind:
            for v in _values(elem.value):
                if isinstance(v, (bytes, bytearray)):
                    continue
                self._remember_value(dec.kind, v)

    def _texts(self, ds: Dataset, tag: int, raw) -> list[str]:
        """An element's values as text; plain ASCII raw bytes are decoded here,
        anything else through pydicom (character sets, VR rules)."""
        value = raw.value
        if isinstance(raw, RawDataElement) and isinstance(value, bytes):
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                pass
            else:
                return [v.strip(" \0") for v in text.split("\\")]
        return [str(v) for v in _values(ds[tag].value) if not isinstance(v, (bytes, bytearray))]

    def _remember_tree(self, ds: Dataset) -> None:
        """Remember the names, IDs, dates and places inside a removed sequence item."""
        d = ds._dict
        for tag, raw in list(d.items()):
            vr = raw.VR or effective_vr(tag, None)
            if vr == "SQ":
                for item in self._element(ds, tag).value or ():
                    self._remember_tree(item)
                continue
            if vr not in _TREE_VRS or tag & 0x10000:
                continue
            kind = kind_for(keyword_for_tag(tag), vr)
            if kind in (None, "text"):
                continue
            for v in self._texts(ds, tag, raw):
                self._remember_value(kind, v)

    def _collect_terms(self, ds: Dataset, prefix: str) -> None:
        """Identifying values of the whole dataset, for cleaning its text."""
        assert self.terms is not None
        for elem in ds:
            if elem.VR == "SQ":
                for item in elem.value or ():
                    self._collect_terms(item, prefix)
                continue
            if elem.tag.is_private or elem.VR not in ("PN", "LO", "SH", "DA", "DT", "CS", "AE", "ST", "LT"):
                continue
            kind = kind_for(elem.keyword, elem.VR)
            if kind in (None, "text", "uid"):
                continue
            dec = self.plan.decide(elem.tag, elem.VR, "")
            if dec.action is KEEP:
                continue
            for v in _values(elem.value):
                self.terms.add(kind, str(v))
