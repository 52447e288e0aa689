"""Scrubbing the text fields of slide metadata, one field at a time.

Every vendor keeps its metadata as named fields: Aperio ``|key = value``
pairs, the NDPI property map's ``key=value`` lines, Philips and OME XML
attributes, Ventana iScan attributes, MRXS INI values.  Each field is
decided by name and value alone -- never by replacing a string everywhere --
and the new text is never longer than the old, so it can be written where
the old one was.

The default decision, after a vendor's list of fields known to be harmless
and the recipe's rules:

* a date field, or a value that is a date: the run's date policy (remove,
  shift by the keyed per-slide offset, keep);
* a field whose name says it identifies (name, ID, barcode, serial, user,
  file, slide, rack, ...): emptied;
* a time of day: emptied under ``remove``, kept otherwise;
* a number or a list of numbers: kept;
* anything else (free text): emptied.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from medscrub import Asset, Rule

IDENTIFYING_KEY = re.compile(
    r"s/n|serial|\bsn\b|(?<![a-z])id(?![a-z])|id$|barcode|name|user|operator|reference|label|slide|file|path|folder|"
    r"directory|host|computer|institution|site|hospital|patient|case|accession|specimen|block|rack|slot|title|"
    r"comment|annotation|note|description|author|artist|owner|unit|address|mail|phone|project|zone|copyright|"
    r"experimenter|email|lot|station",
    re.I,
)
DATE_KEY = re.compile(r"date|created|updated|modified|acquisition", re.I)
TIME_KEY = re.compile(r"time", re.I)
NUMERIC = re.compile(r"^[\s\d.,;:+\-eE()x%\[\]\"']*$")
DATE_YMD = re.compile(r"(?<!\d)(\d{4})([-:/.])(\d{2})\2(\d{2})(?!\d)")
DATE_MDY = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\d/])")
DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})")

KIND_BY_KEY = (
    (re.compile(r"user|operator|name|author|artist|owner|experimenter|patient", re.I), "name"),
    (re.compile(r"serial|s/n|\bsn\b|unit|host|computer|station|scanner|device", re.I), "device"),
    (re.compile(r"institution|site|hospital|address", re.I), "institution"),
    (re.compile(r"file|path|folder|directory|title|slide|label|reference", re.I), "label"),
)


def kind_of(key: str) -> str:
    for pattern, kind in KIND_BY_KEY:
        if pattern.search(key):
            return kind
    return "id" if IDENTIFYING_KEY.search(key) else "text"


def classify(key: str, value: str) -> str:
    """``keep``, ``date``, ``time`` or ``blank`` for one field."""
    if not value.strip():
        return "keep"
    if DATE_KEY.search(key) or (looks_like_date(value) and not IDENTIFYING_KEY.search(key)):
        return "date"
    if IDENTIFYING_KEY.search(key):
        return "blank"
    if TIME_KEY.search(key):
        return "time"
    if NUMERIC.match(value):
        return "keep"
    return "blank"


def looks_like_date(value: str) -> bool:
    return bool(DATE_YMD.search(value) or DATE_MDY.search(value))


def shift_dates(value: str, days: int) -> str | None:
    """Every date in ``value`` moved by ``days``, each in its own layout and
    width; None when the value holds something that looks like a date but is
    not one (it is then emptied)."""
    bad = False

    def move(d: dt.date) -> dt.date:
        return d + dt.timedelta(days=days)

    def ymd(m: re.Match) -> str:
        nonlocal bad
        try:
            d = move(dt.date(int(m[1]), int(m[3]), int(m[4])))
        except ValueError:
            bad = True
            return m[0]
        return f"{d.year:04d}{m[2]}{d.month:02d}{m[2]}{d.day:02d}"

    def mdy(m: re.Match) -> str:
        nonlocal bad
        year = int(m[3]) + (2000 if len(m[3]) == 2 and int(m[3]) < 70 else 1900 if len(m[3]) == 2 else 0)
        try:
            d = move(dt.date(year, int(m[1]), int(m[2])))
        except ValueError:
            bad = True
            return m[0]
        y = f"{d.year % 100:02d}" if len(m[3]) == 2 else f"{d.year:04d}"
        mm = f"{d.month:02d}" if len(m[1]) == 2 else str(d.month)
        dd = f"{d.day:02d}" if len(m[2]) == 2 else str(d.day)
        return f"{mm}/{dd}/{y}"

    out = DATE_YMD.sub(ymd, value)
    out = DATE_MDY.sub(mdy, out)
    if out == value:
        m = DATE_COMPACT.match(value.strip())
        if m:
            try:
                d = move(dt.date(int(m[1]), int(m[2]), int(m[3])))
            except ValueError:
                return None
            lead = value[: len(value) - len(value.lstrip())]
            out = lead + f"{d.year:04d}{d.month:02d}{d.day:02d}" + value.strip()[8:]
        else:
            return None
    return None if bad else out


@dataclass
class FieldScrubber:
    """Decides and rewrites fields for one asset, recording every change."""

    asset: Asset
    vendor: str
    date_policy: str  # remove | shift | keep
    date_offset: int  # days, for shift
    rules: dict[str, Rule] = field(default_factory=dict)
    pseudonym: Callable[[str, str], str] | None = None  # (kind, value) -> pseudonym
    hasher: Callable[[str, str], str] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def rule(self, key: str) -> Rule | None:
        return self.rules.get(f"{self.vendor}:{key}") or self.rules.get(key)

    def scrub(self, place: str, key: str, value: str, keep: bool = False) -> str:
        """The new text of one field (never longer than ``value``)."""
        rule = self.rule(key)
        if rule is not None:
            action = rule.action
        elif keep:
            return value
        else:
            decision = classify(key, value)
            if decision == "keep":
                return value
            if decision == "time":
                if self.date_policy == "remove":
                    return self._done(place, key, value, "", "remove", remember=False)
                return value
            if decision == "date":
                action = {"remove": "remove", "shift": "shift", "keep": "keep"}[self.date_policy]
                if action == "keep":
                    return value
            else:
                action = "empty"
        if action == "keep":
            return value
        if action == "shift":
            moved = shift_dates(value, self.date_offset)
            if moved is None or len(moved) > len(value):
                return self._done(place, key, value, "", "remove", kind="date")
            return self._done(place, key, value, moved, "shift", kind="date", detail=f"{self.date_offset:+d} days")
        if action == "replace" and rule is not None and rule.value is not None:
            new = rule.value
        elif action == "pseudonymise" and self.pseudonym is not None:
            new = self.pseudonym(key, value)
        elif action == "hash" and self.hasher is not None:
            new = self.hasher(key, value)
        else:
            new = ""
        if len(new.encode()) > len(value.encode()):
            # the value must fit where the old one was: empty rather than cut a pseudonym
            new, action = "", "empty"
        return self._done(place, key, value, new, action)

    def set(self, place: str, key: str, old: str, new: str, action: str, detail: str = "") -> str:
        """Record a value the plugin chose itself (a same-length ID, the slide
        pseudonym) and remember the old one, as :meth:`scrub` does."""
        return self._done(place, key, old, new, action, detail=detail)

    def _done(self, place: str, key: str, old: str, new: str, action: str, kind: str | None = None,
              detail: str = "", remember: bool = True) -> str:
        if new == old:
            return old
        if remember:
            kind = kind or ("date" if looks_like_date(old) and not IDENTIFYING_KEY.search(key) else kind_of(key))
            value = old.strip().strip('"')
            if not (value.isdigit() and len(value) < 7):  # short numbers occur everywhere by chance
                self.asset.remember(kind, value)
        self.asset.record(action, f"{place}:{key}", "wsi", detail)
        self.counts[action] = self.counts.get(action, 0) + 1
        return new


# -- containers of fields ---------------------------------------------------------

APERIO_KEEP = {
    "AppMag", "StripeWidth", "MPP", "Left", "Top", "LineCameraSkew", "LineAreaXOffset", "LineAreaYOffset",
    "Focus Offset", "OriginalWidth", "Originalheight", "OriginalHeight", "Filtered", "Exposure Time",
    "Exposure Scale", "Display Color", "Compression Quality", "Gamma", "Scan Warning", "Icc Profile",
}
_APERIO_FIELD = re.compile(r"^(\s*)([^=]*?)(\s*=\s*)(.*?)(\s*)$", re.S)


def scrub_aperio(text: str, s: FieldScrubber, place: str) -> str:
    """``header|key = value|key = value``: the header (library, geometry) stays."""
    parts = text.split("|")
    out = [parts[0]]
    for part in parts[1:]:
        m = _APERIO_FIELD.match(part)
        if not m:
            # a field without "=" is free text
            out.append(s.scrub(place, "text", part) if part.strip() else part)
            continue
        lead, key, eq, value, tail = m.groups()
        new = s.scrub(place, key, value, keep=key in APERIO_KEEP)
        out.append(f"{lead}{key}{eq}{new}{tail}")
    return "|".join(out)


def scrub_key_values(text: str, s: FieldScrubber, place: str, keep: set[str] = frozenset(), sep: str = "\r\n") -> str:
    """``key=value`` lines (the NDPI property map)."""
    lines = text.split(sep)
    out = []
    for line in lines:
        key, eq, value = line.partition("=")
        if not eq:
            out.append(s.scrub(place, "text", line) if line.strip() else line)
            continue
        out.append(f"{key}={s.scrub(place, key.strip(), value, keep=key.strip() in keep)}")
    return sep.join(out)


_ATTR = re.compile(r'([A-Za-z_][\w:.-]*)(\s*=\s*)"([^"]*)"')
_TAG = re.compile(r"<(/?)([A-Za-z_][\w:.-]*)([^<>]*?)(/?)>|<\?.*?\?>|<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.S)


def scrub_xml(
    text: str,
    s: FieldScrubber,
    place: str,
    keep_attrs: Callable[[str, str], bool],
    keep_text: Callable[[str], bool],
    text_key: Callable[[str, dict[str, str]], str] | None = None,
) -> str:
    """Scrub the attribute values and leaf texts of an XML document in place.

    The document's structure is untouched: tags, order, whitespace.
    ``keep_attrs(element, attribute)`` and ``keep_text(element)`` name the
    harmless ones; ``text_key(element, attributes)`` names a leaf's field
    (Philips keeps the name in a ``Name`` attribute).
    """
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, dict[str, str]]] = []
    for m in _TAG.finditer(text):
        between = text[pos:m.start()]
        if between.strip() and stack:
            element, attrs = stack[-1]
            key = text_key(element, attrs) if text_key else element
            if keep_text(key):
                out.append(between)
            else:
                out.append(s.scrub(place, key, between))
        else:
            out.append(between)
        pos = m.end()
        closing, name = m.group(1), m.group(2)
        if name is None:  # processing instruction, comment or CDATA
            if m.group(0).startswith("<![CDATA["):
                out.append("")  # CDATA is free text
                s.asset.record("empty", f"{place}:CDATA", "wsi")
            else:
                out.append(m.group(0))
            continue
        if closing:
            if stack:
                stack.pop()
            out.append(m.group(0))
            continue
        attrs: dict[str, str] = {}

        def attr(am: re.Match, element: str = name, attrs: dict[str, str] = attrs) -> str:
            attrs[am.group(1)] = am.group(3)
            if am.group(1).startswith("xmlns") or keep_attrs(element, am.group(1)):
                return am.group(0)
            return f"{am.group(1)}{am.group(2)}\"{s.scrub(place, am.group(1), am.group(3))}\""

        rest = _ATTR.sub(attr, m.group(3))
        out.append(f"<{name}{rest}{m.group(4)}>")
        if not m.group(4):
            stack.append((name, attrs))
    out.append(text[pos:])
    return "".join(out)


def find_element(text: str, start: int, name: str) -> int:
    """The end of the element ``name`` that opens at ``start`` (nesting counted)."""
    opener = re.compile(rf"<{name}[\s>/]|</{name}\s*>")
    depth = 0
    for m in opener.finditer(text, start):
        if m.group(0).startswith("</"):
            depth -= 1
            if depth == 0:
                return m.end()
        else:
            tag_end = text.index(">", m.start())
            if text[tag_end - 1] != "/":
                depth += 1
            elif depth == 0:
                return tag_end + 1
    return -1

