"""Site rules for DICOM: selectors, their validation and matching.

A selector names the elements a rule acts on:

- a keyword: ``PatientComments``
- a tag: ``(0010,4000)``, ``0010,4000`` or ``00104000``
- a tag pattern, ``x`` for any hex digit: ``(0010,xxxx)``, ``(60xx,4000)``
- a private element by creator: ``(0019,xx0C)@SIEMENS MR HEADER`` (the group,
  ``xx`` for the block the creator reserved, and the element offset)
- a value representation: ``vr:PN``

For one element, the matching rule of the highest layer wins, and within a
layer the one registered last; that rule replaces the profile's decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from medscrub import Rule, RuleBook

FORMAT = "dicom"

TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
DATE_VRS = frozenset({"DA", "DT", "TM"})
INT_VRS = frozenset({"IS", "US", "SS", "UL", "SL", "SV", "UV"})
FLOAT_VRS = frozenset({"DS", "FL", "FD"})
KNOWN_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
     "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"}
)
# max characters of one value, where the VR sets one
MAX_LENGTH = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "IS": 12, "LO": 64, "SH": 16, "TM": 14, "UI": 64,
              "DT": 26, "PN": 64}

_HEX_TAG = re.compile(r"^\(?([0-9A-Fa-fXx]{4}),?([0-9A-Fa-fXx]{4})\)?$")


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Selector:
    """A parsed selector.  ``kind`` is tag, pattern, private or vr."""

    text: str
    kind: str
    mask: int = 0xFFFFFFFF
    value: int = 0
    creator: str = ""
    vr: str = ""

    def matches(self, tag: int, vr: str, creator: str | None) -> bool:
        if self.kind == "vr":
            return vr == self.vr
        if self.kind == "private":
            return (
                creator is not None
                and tag >> 16 == self.value >> 16
                and tag & 0xFF == self.value & 0xFF
                and tag & 0xFFFF >= 0x1000
                and creator == self.creator
            )
        return tag & self.mask == self.value

    @property
    def known_vr(self) -> str | None:
        """The VR of the one element this selector names, when it names one."""
        if self.kind == "vr":
            return self.vr
        if self.kind == "tag" and not (self.value >> 16) & 1:
            try:
                return dictionary_VR(self.value)
            except KeyError:
                return None
        return None


def looks_like_dicom(text: str) -> bool:
    """True for selectors written in a DICOM form (anything but a bare word)."""
    text = text.strip()
    return bool(text.lower().startswith("vr:") or "@" in text or _HEX_TAG.match(text.split("@")[0].strip()))


def parse_selector(text: str) -> Selector:
    raw = text.strip()
    if not raw:
        raise SelectorError("empty selector")
    if raw.lower().startswith("vr:"):
        vr = raw[3:].strip().upper()
        if vr not in KNOWN_VRS:
            raise SelectorError(f"unknown value representation {vr!r}")
        return Selector(raw, "vr", vr=vr)
    if "@" in raw:
        tag_text, creator = (part.strip() for part in raw.split("@", 1))
        m = _HEX_TAG.match(tag_text)
        if not m:
            raise SelectorError("a private selector is (gggg,xxee)@CREATOR")
        group, element = m.group(1).upper(), m.group(2).upper()
        if "X" in group or int(group, 16) % 2 == 0:
            raise SelectorError("a private selector needs an odd group number, such as (0019,xx0C)@CREATOR")
        if element[:2] != "XX" or "X" in element[2:]:
            raise SelectorError("a private selector's element is xx and the two-digit offset, such as xx0C")
        if not creator:
            raise SelectorError("a private selector needs the private creator after @")
        return Selector(raw, "private", value=(int(group, 16) << 16) | int(element[2:], 16), creator=creator)
    m = _HEX_TAG.match(raw)
    if m and (raw.startswith("(") == raw.endswith(")")):
        digits = (m.group(1) + m.group(2)).upper()
        if "X" in digits:
            mask = int("".join("0" if c == "X" else "F" for c in digits), 16)
            return Selector(raw, "pattern", mask=mask, value=int(digits.replace("X", "0"), 16))
        return Selector(raw, "tag", value=int(digits, 16))
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", raw):
        tag = tag_for_keyword(raw)
        if tag is None:
            raise SelectorError(f"{raw!r} is not a DICOM keyword")
        return Selector(raw, "tag", value=int(tag))
    raise SelectorError(
        "not a DICOM selector; use a keyword, (gggg,eeee), a pattern such as (60xx,4000), "
        "(gggg,xxee)@CREATOR or vr:XX"
    )


def value_problem(action: str, vr: str | None, value: str | None) -> str | None:
    """Why ``action`` cannot act on an element of ``vr``, or None when it can."""
    if vr is None:
        return None
    if action in ("hash", "pseudonymise") and vr not in TEXT_VRS and vr != "UI":
        return f"{action} needs a text or UID element, not VR {vr}"
    if action == "hash" and vr in MAX_LENGTH and MAX_LENGTH[vr] < 16:
        return f"hash gives 16 characters, more than VR {vr} holds"
    if action == "pseudonymise" and vr in MAX_LENGTH and MAX_LENGTH[vr] < 12:
        return f"pseudonymise gives 12 characters, more than VR {vr} holds"
    if action == "shift" and vr not in DATE_VRS:
        return f"shift needs a DA, DT or TM element, not VR {vr}"
    if action == "replace":
        if vr in ("SQ", "OB", "OW", "OD", "OF", "OL", "OV", "UN", "AT"):
            return f"replace cannot give a value to VR {vr}"
        for part in (value or "").split("\\"):
            if vr in INT_VRS and not re.fullmatch(r"[+-]?\d+", part.strip()):
                return f"replace value {part!r} is not an integer (VR {vr})"
            if vr in FLOAT_VRS and not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", part.strip()):
                return f"replace value {part!r} is not a number (VR {vr})"
            if vr == "DA" and part and not re.fullmatch(r"\d{8}", part):
                return f"replace value {part!r} is not a date YYYYMMDD"
            if vr in MAX_LENGTH and len(part) > MAX_LENGTH[vr]:
                return f"replace value {part!r} is longer than VR {vr} allows ({MAX_LENGTH[vr]})"
    return None


@dataclass(frozen=True)
class SiteRule:
    selector: Selector
    rule: Rule
    source: str  # the rule set's name
    order: int  # higher wins


class SiteRules:
    """The site rules that apply to DICOM, compiled once per run."""

    def __init__(self, rules: list[SiteRule]) -> None:
        # latest (highest layer, then last registered) first: the first match wins
        self.rules = sorted(rules, key=lambda r: -r.order)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match(self, tag: int, vr: str, creator: str | None) -> SiteRule | None:
        for rule in self.rules:
            if rule.selector.matches(tag, vr, creator):
                return rule
        return None


def _dicom_rules(book: RuleBook):
    """(order, rule set, rule) for every rule meant for DICOM: those that name
    the format, and format-less ones written as a DICOM selector (a bare word
    that is no DICOM keyword may be another format's key)."""
    for order, (ruleset, rule) in enumerate(book.for_format(FORMAT)):
        explicit = rule.format == FORMAT or FORMAT in ruleset.formats
        if explicit or _is_dicom_keyword_or_form(rule.match):
            yield order, ruleset, rule


def _is_dicom_keyword_or_form(text: str) -> bool:
    if looks_like_dicom(text):
        return True
    return re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", text.strip()) is not None and tag_for_keyword(text.strip()) is not None


def compile_site_rules(book: RuleBook) -> SiteRules:
    compiled = []
    for order, ruleset, rule in _dicom_rules(book):
        try:
            selector = parse_selector(rule.match)
        except SelectorError:
            continue  # reported by check_rules before any run starts
        compiled.append(SiteRule(selector, rule, ruleset.name, order))
    return SiteRules(compiled)


def check_rules(book: RuleBook) -> list[str]:
    """A message for each DICOM rule with a bad selector or value."""
    problems = []
    for _order, ruleset, rule in _dicom_rules(book):
        where = f"rule set {ruleset.name!r}, rule {rule.match!r} ({rule.action})"
        try:
            selector = parse_selector(rule.match)
        except SelectorError as e:
            problems.append(f"{where}: {e}")
            continue
        problem = value_problem(rule.action, selector.known_vr, rule.value)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def describe(tag: int) -> str:
    """``(gggg,eeee) Keyword`` for a place in a manifest."""
    keyword = keyword_for_tag(tag) if not (tag >> 16) & 1 else ""
    text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{text} {keyword}" if keyword else text
