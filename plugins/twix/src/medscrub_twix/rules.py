"""Decide every replacement of a twix file, all of the same length.

Each identifying field value gets a new value of exactly its length, so
``headerLength``, the buffer lengths and the file-header offsets stay valid
and the k-space bytes stay where they were.  Then every original value that
was replaced is looked for again in the whole header text (all buffers and
the padding): names anywhere, digits (serial, exam date, LOID numbers) inside
quoted strings and as whole numbers elsewhere, so that a value hidden in a
field this plugin does not know is replaced the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import defaultdict
from dataclasses import dataclass

from medscrub import Asset, Rule, RuleBook

from . import catalog
from .layout import ENTRY_SIZE, NAME_FIELD, PATIENT_NAME_AT, PROTOCOL_NAME_AT
from .options import TwixOptions
from .reader import (
    SERIAL_COMPONENT,
    SIEMENS_ROOT,
    TwixFile,
    c_string,
    identifying_parts,
    is_date,
    neutral,
    uid_parts,
)
from .xprot import STRING

FORMAT = "twix"
FILE_HEADER = "FileHeader"
_TEXT_CATEGORIES = (catalog.NAME, catalog.ID, catalog.INSTITUTION, catalog.ADDRESS, catalog.PHYSICIAN, catalog.TEXT,
                    catalog.PROTOCOL, catalog.IDENTIFIER)
_NUMBER_CATEGORIES = (catalog.SEX, catalog.AGE, catalog.WEIGHT, catalog.HEIGHT)
_UNSAFE = re.compile(r'[^ !#-~]')  # what may not go inside a quoted header value
_DIGIT = re.compile(r"\d")
_DATE8 = re.compile(r"(?<!\d)(?=(\d{8}))")
_CHUNK = 4096


def selector_matches(selector: str, buffer: str, name: str, short: str) -> bool:
    sel = selector.lower()
    if ":" in sel:
        buf, _, field = sel.partition(":")
        return buf == buffer.lower() and field in (name.lower(), short.lower())
    return sel in (name.lower(), short.lower())


def twix_rules(rules: RuleBook) -> list[tuple[str, Rule]]:
    """(rule set name, rule) for twix, lowest layer first."""
    return [(rs.name, r) for rs, r in rules.for_format(FORMAT)]


def rule_for(rules: list[tuple[str, Rule]], buffer: str, name: str, short: str) -> tuple[str, Rule] | None:
    found = None
    for source, rule in rules:
        if selector_matches(rule.match, buffer, name, short):
            found = (source, rule)
    return found


def fit(text: str, n: int, pad: str) -> str:
    text = _UNSAFE.sub("_", text)
    return text[:n] + pad * (n - len(text[:n]))


class Planner:
    """The replacement of each value, consistent within a run (keyed)."""

    def __init__(self, context, options: TwixOptions) -> None:
        self.context = context
        self.options = options
        self.policy = context.date_policy
        self.serials: set[str] = set()

    # -- keyed pieces --------------------------------------------------------
    def digits(self, kind: str, run: str) -> str:
        """Keyed digits of the same length; no new leading zero."""
        out, i = "", 0
        while len(out) < len(run):
            out += str(int(self.context.pseudonyms.hash(f"twix-{kind}", f"{run}#{i}", 64), 16))[2:]
            i += 1
        out = out[: len(run)]
        if run[0] != "0" and out[0] == "0":
            out = "9" + out[1:]
        self.issue(f"twix-{kind}", run, out)
        return out

    def issue(self, kind: str, original: str, written: str) -> None:
        # keyed digits and cut pseudonyms reach the re-identification map too
        if original != written:
            self.context.pseudonyms.note(kind, original, written)

    def serial(self, run: str) -> str:
        return self.digits("device", run)

    def shift_date(self, s: str, key: str) -> str:
        d = dt.date(int(s[:4]), int(s[4:6]), int(s[6:8])) + dt.timedelta(days=self.context.pseudonyms.date_offset(key))
        return f"{d.year:04d}{d.month:02d}{d.day:02d}"

    def date(self, s: str, key: str, action: str) -> str:
        """An 8-digit date under ``action`` (remove, shift, keep)."""
        if action == "keep":
            return s
        if action == "shift":
            return self.shift_date(s, key)
        return "0" * 8

    def date_run(self, run: str, key: str, action: str) -> str:
        """A digit run that starts with a date (``20210622151635693``)."""
        if action == "keep":
            return run
        if action == "shift":
            return self.shift_date(run[:8], key) + run[8:]
        return "0" * 8 if len(run) == 8 else self.digits("uid", run)

    def uid(self, value: str, key: str) -> str:
        """Serial, dates and database keys of a UID or LOID replaced, the rest kept."""
        siemens = value.startswith(SIEMENS_ROOT)
        out = list(value)
        previous_was_date = False
        for index, m in enumerate(re.finditer(r"\d+", value)):
            run = m.group()
            new = run
            was_date = False
            if (siemens and index == SERIAL_COMPONENT) or run in self.serials:
                new = self.serial(run)
            elif len(run) >= 8 and is_date(run[:8]):
                new, was_date = self.date_run(run, key, self.policy), True
            elif previous_was_date and len(run) == 6:
                new = "0" * 6 if self.policy == "remove" else run  # the time after a date
            elif len(run) >= 5 and not (siemens and index < SERIAL_COMPONENT):
                new = self.digits("uid", run)
            previous_was_date = was_date
            out[m.start():m.end()] = new
        return "".join(out)

    # -- one value -----------------------------------------------------------
    def default_action(self, category: str | None) -> str:
        if category in (catalog.NAME, catalog.ID):
            return "pseudonymise"
        if category in (catalog.BIRTH_DATE, catalog.DATE):
            return self.policy
        if category in _NUMBER_CATEGORIES:
            return "remove"
        if category in (catalog.DEVICE, catalog.IDENTIFIER):
            return "hash"
        if category == catalog.UID:
            return "uid"
        if category == catalog.PROTOCOL:
            return self.options.protocol_name
        if category in (catalog.INSTITUTION, catalog.ADDRESS, catalog.PHYSICIAN, catalog.TEXT):
            return "replace"
        return "keep"

    def new_value(self, value: str, category: str | None, action: str, rule_value: str | None,
                  patient_key: str) -> str:
        n = len(value)
        pad = self.options.pad
        if action == "keep":
            return value
        if action == "empty":
            return pad * n
        if action == "remove":
            if category in _TEXT_CATEGORIES or category is None:
                return "x" * n
            return re.sub(r"[A-Za-z]", "x", _DIGIT.sub("0", value))
        if action == "replace":
            return fit(rule_value if rule_value is not None else self.options.replacement, n, pad)
        if action == "pseudonymise":
            if category in (catalog.NAME, catalog.ID):
                pseudonym = self.context.patient_pseudonym(patient_key)
                written = fit(pseudonym, n, pad)
                self.issue("twix-patient", patient_key, written.strip())
                return written
            return fit(self.context.pseudonyms.pseudonym(f"twix-{category}", value), n, pad)
        if action == "hash":
            stripped = value.strip()
            if stripped.isdigit():
                new = self.serial(stripped) if category == catalog.DEVICE else self.digits("id", stripped)
                return value.replace(stripped, new)
            hexed = ""
            i = 0
            while len(hexed) < n:
                hexed += self.context.pseudonyms.hash(f"twix-{category}", f"{value}#{i}", 64)
                i += 1
            return hexed[:n]
        if action == "shift":
            found = [m.start() for m in _DATE8.finditer(value) if is_date(value[m.start():m.start() + 8])]
            if not found:
                return re.sub(r"[A-Za-z]", "x", _DIGIT.sub("0", value))
            out = value
            for at in found:
                out = out[:at] + self.shift_date(out[at:at + 8], patient_key) + out[at + 8:]
            return out
        if action == "uid":
            if re.fullmatch(r"[\d._\s-]*", value):
                return self.uid(value, patient_key)
            return fit(self.options.replacement, n, pad)
        raise ValueError(f"unknown action {action!r}")


def _patient_key(data: TwixFile, meas: int) -> str | None:
    for wanted in (catalog.ID, catalog.NAME):
        for occ in data.occurrences:
            if occ.meas == meas and occ.category == wanted and occ.value.strip() and not neutral(occ.value):
                return occ.value.strip()
    for e in data.entries:
        name = c_string(e.patient)
        if e.meas == meas and name and not neutral(name):
            return name
    return None


def apply(asset: Asset, rules: RuleBook, context, options: TwixOptions) -> None:
    """Fill ``asset.data.patches`` and ``zeros`` and record every change."""
    data: TwixFile = asset.data
    planner = Planner(context, options)
    site = twix_rules(rules)
    for occ in data.occurrences:
        if occ.category == catalog.DEVICE and occ.value.strip().isdigit():
            planner.serials.add(occ.value.strip())
        if occ.category == catalog.UID:
            s = serial_of_value(occ.value)
            if s:
                planner.serials.add(s)
    keys = {m.number: _patient_key(data, m.number) for m in data.layout.measurements}
    fallback = next((k for k in keys.values() if k), None)

    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    sources: dict[tuple[str, str, str], str] = {}
    kept: list[tuple[str, str]] = []
    scrubbed: list[tuple[str, str]] = []  # (category, original) of values that changed
    new_at: dict[int, bytes] = {}
    for occ in data.occurrences:
        value = occ.value
        found = rule_for(site, occ.field.buffer, occ.field.name, occ.field.short)
        category = occ.category
        if found:
            source, rule = found
            action, rule_value = rule.action, rule.value
        else:
            source, action, rule_value = "twix profile", planner.default_action(category), None
        key = keys.get(occ.meas) or fallback or value.strip()
        if not value.strip() or (neutral(value) and action not in ("replace",)):
            new = value
            action_done = "keep"
        else:
            new = planner.new_value(value, category, action, rule_value, key)
            action_done = action if new != value else "keep"
        if new == value:
            if category and value.strip() and not neutral(value):
                kept.append((category, value.strip()))
        else:
            scrubbed.append((category or catalog.TEXT, value.strip()))
        raw_old = value.encode("latin-1").replace(b'"', b'""') if occ.span.quoted else value.encode("latin-1")
        raw_new = new.encode("latin-1", "replace")
        if len(raw_new) != len(raw_old):  # a doubled quote in the original: keep the length exact
            raw_new = fit(new, len(raw_old), options.pad).encode("latin-1", "replace")
        if raw_new != raw_old:
            new_at[occ.span.start] = raw_new
            data.expected.append((occ.span.start, raw_old, raw_new))
        label = "uid" if action_done == "uid" else action_done
        k = (label, occ.place, "")
        counts[k] += 1
        sources[k] = source

    for (action, place, _), n in counts.items():
        if action != "keep":
            asset.record(action, place, sources[(action, place, "")], f"{n} values" if n > 1 else "")

    sweep = _sweep_pairs(planner, scrubbed, keys, fallback)
    fd = os.open(data.path, os.O_RDONLY)
    try:
        for meas in data.layout.measurements:
            header = os.pread(fd, meas.header_length, meas.offset)
            new = bytearray(header)
            for at, raw in new_at.items():
                if meas.offset <= at < meas.header_end:
                    new[at - meas.offset:at - meas.offset + len(raw)] = raw
            swept = _sweep(new, sweep)
            if swept:
                asset.record("clean", f"meas {meas.number}/header text", "twix profile",
                             f"{swept} more occurrences of replaced values")
            pad_from = meas.padding_start - meas.offset
            if options.zero_filler and any(new[pad_from:]):
                new[pad_from:] = bytes(len(new) - pad_from)
                asset.record("empty", f"meas {meas.number}/header padding", "twix profile",
                             f"{len(new) - pad_from} bytes")
            _diff(header, bytes(new), meas.offset, data.patches)
        if data.layout.version == "VD":
            _file_header(asset, data, fd, site, planner, keys, fallback, options, sweep)
    finally:
        os.close(fd)
    _forget_kept(asset, kept, scrubbed)
    if planner.policy == "keep":
        asset.identifiers.pop("date", None)


def serial_of_value(value: str) -> str | None:
    value = value.strip()
    if value.startswith(SIEMENS_ROOT):
        parts = uid_parts(value)
        if len(parts) > SERIAL_COMPONENT:
            return parts[SERIAL_COMPONENT][1]
    return None


@dataclass
class Sweep:
    text: dict[bytes, bytes]  # replaced anywhere
    digits: dict[bytes, bytes]  # inside quoted strings, and as whole numbers elsewhere


def _sweep_pairs(planner: Planner, scrubbed: list[tuple[str, str]], keys, fallback) -> Sweep:
    key = fallback or ""
    text: dict[bytes, bytes] = {}
    digits: dict[bytes, bytes] = {}
    for category, value in scrubbed:
        if category in _TEXT_CATEGORIES and category != catalog.PROTOCOL and len(value) >= 4 and not value.isdigit():
            action = planner.default_action(category)
            if action in ("keep", "uid"):
                action = "remove"
            new = planner.new_value(value, category, action, None, key if category in (catalog.NAME, catalog.ID)
                                    and key else value)
            text[value.encode("latin-1")] = new.encode("latin-1", "replace")
        for kind, part in identifying_parts(category, value):
            if kind == "date" and planner.policy != "keep":
                digits[part.encode()] = planner.date(part, key, planner.policy).encode()
            elif kind == "device":
                digits[part.encode()] = planner.serial(part).encode()
        if category == catalog.UID and re.fullmatch(r"[\d._\s-]*", value):
            # the same mapping as the field itself, run by run
            for (_, old), (_, now) in zip(uid_parts(value), uid_parts(planner.uid(value, key)), strict=False):
                if len(old) >= 5:
                    digits[old.encode()] = now.encode()
        if category in (catalog.ID, catalog.IDENTIFIER, catalog.DEVICE) and value.isdigit() and len(value) >= 5:
            new = planner.serial(value) if category == catalog.DEVICE else planner.digits("id", value)
            digits[value.encode()] = new.encode()
    for serial in planner.serials:
        digits[serial.encode()] = planner.serial(serial).encode()
    return Sweep({k: v for k, v in text.items() if k != v}, {k: v for k, v in digits.items() if k != v})


def _alternation(keys) -> re.Pattern[bytes]:
    return re.compile(b"|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))


def _sweep(buf: bytearray, sweep: Sweep) -> int:
    """Replace every occurrence in place; how many were found."""
    count = 0
    if sweep.text:
        pattern = _alternation(sweep.text)
        for m in list(pattern.finditer(buf)):
            buf[m.start():m.end()] = sweep.text[m.group()]
            count += 1
    if sweep.digits:
        inner = _alternation(sweep.digits)
        for s in list(STRING.finditer(buf)):
            for m in list(inner.finditer(buf, s.start(), s.end())):
                buf[m.start():m.end()] = sweep.digits[m.group()]
                count += 1
        whole = re.compile(rb"(?<![0-9])(?:" + inner.pattern + rb")(?![0-9])")
        for m in list(whole.finditer(buf)):
            buf[m.start():m.end()] = sweep.digits[m.group()]
            count += 1
    return count


def _diff(old: bytes, new: bytes, base: int, patches: dict[int, bytes]) -> None:
    for at in range(0, len(old), _CHUNK):
        a, b = old[at:at + _CHUNK], new[at:at + _CHUNK]
        if a != b:
            patches[base + at] = b


def _file_header(asset: Asset, data: TwixFile, fd: int, site, planner: Planner, keys, fallback,
                 options: TwixOptions, sweep: Sweep) -> None:
    layout = data.layout
    end = min(m.offset for m in layout.measurements)
    old = os.pread(fd, end, 0)
    new = bytearray(old)
    for e in data.entries:
        at = 8 + e.index * ENTRY_SIZE
        key = keys.get(e.meas) or fallback
        for label, offset, category in (("PatientName", PATIENT_NAME_AT, catalog.NAME),
                                        ("ProtocolName", PROTOCOL_NAME_AT, catalog.PROTOCOL)):
            raw = old[at + offset:at + offset + NAME_FIELD]
            nul = raw.find(b"\0")
            used = raw[: nul if nul >= 0 else NAME_FIELD]
            value = used.decode("latin-1")
            found = rule_for(site, FILE_HEADER, label, label)
            source, action, rule_value = (found[0], found[1].action, found[1].value) if found else (
                "twix profile", planner.default_action(category), None)
            place = f"file header/entry {e.index + 1}:{label}"
            if value.strip() and not (neutral(value) and action != "replace"):
                written = planner.new_value(value, category, action, rule_value, key or value.strip())
                if written != value:
                    new[at + offset:at + offset + len(used)] = written.encode("latin-1", "replace")
                    data.expected.append((at + offset, used, written.encode("latin-1", "replace")))
                    asset.record(action, place, source)
            if options.zero_filler and any(raw[len(used):]):
                new[at + offset + len(used):at + offset + NAME_FIELD] = bytes(NAME_FIELD - len(used))
                asset.record("empty", place, "twix profile", "stale bytes after the name")
    if options.zero_filler:
        unused = 8 + ENTRY_SIZE * len(layout.entries)
        if any(new[unused:end]):
            new[unused:end] = bytes(end - unused)
            asset.record("empty", "file header/unused entries", "twix profile", f"{end - unused} bytes")
    _sweep(new, Sweep(sweep.text, {}))
    _diff(old, bytes(new), 0, data.patches)
    if options.zero_filler:
        ordered = sorted(layout.measurements, key=lambda m: m.offset)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if a.declared_end is not None and a.declared_end < b.offset:
                data.zeros.append((a.declared_end, b.offset))
        last = ordered[-1]
        if last.declared_end is not None and last.declared_end < layout.size:
            data.zeros.append((last.declared_end, layout.size))
        gaps = [(a, b) for a, b in data.zeros if _nonzero(fd, a, b)]
        if gaps:
            asset.record("empty", "bytes outside any measurement", "twix profile",
                         f"{sum(b - a for a, b in gaps)} bytes in {len(gaps)} gaps")


def _nonzero(fd: int, start: int, end: int) -> bool:
    at = start
    while at < end:
        block = os.pread(fd, min(1 << 20, end - at), at)
        if not block:
            return False
        if any(block):
            return True
        at += len(block)
    return False


def _forget_kept(asset: Asset, kept: list[tuple[str, str]], scrubbed: list[tuple[str, str]]) -> None:
    """Values a rule keeps are not leaks: take them out of the leak check,
    unless the same value was replaced elsewhere (then it is swept too)."""
    gone = {v for _, v in scrubbed}
    for category, value in kept:
        if value in gone:
            continue
        for kind, part in identifying_parts(category, value):
            asset.forget(kind, part)
