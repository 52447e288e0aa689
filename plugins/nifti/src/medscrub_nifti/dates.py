"""Dates and times in sidecars and TSVs, and how a date policy treats them.

BIDS writes dates as ISO 8601 (``2021-03-04``, ``2021-03-04T10:11:12.5``);
converters that copy DICOM keys sometimes keep DICOM's ``20210304``.  A
shift moves the date by the patient's keyed offset in days and leaves the
time of day and any zone as they were, as the DICOM plugin does.
"""

from __future__ import annotations

import datetime as dt
import re

ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})((?:[T ]\d{2}:\d{2}.*)?)$")
COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})((?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d+)?)?)?)?(?:[+-]\d{4})?)$")
CLOCK_TIME = re.compile(r"^\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")


def _valid(year: str, month: str, day: str) -> dt.date | None:
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def is_iso_date(value: object) -> bool:
    """True for a string that is an ISO date or date-time."""
    if not isinstance(value, str):
        return False
    m = ISO_DATE.match(value.strip())
    return bool(m) and _valid(*m.groups()[:3]) is not None


def is_compact_date(value: object) -> bool:
    if not isinstance(value, str):
        return False
    m = COMPACT_DATE.match(value.strip())
    return bool(m) and _valid(*m.groups()[:3]) is not None


def is_clock_time(value: object) -> bool:
    return isinstance(value, str) and bool(CLOCK_TIME.match(value.strip()))


def shift_date(value: str, days: int) -> str | None:
    """``value`` (ISO or DICOM-style date or date-time) moved by ``days``;
    None when it is not a date this module can move."""
    text = value.strip()
    for pattern in (ISO_DATE, COMPACT_DATE):
        m = pattern.match(text)
        if m:
            day = _valid(*m.groups()[:3])
            if day is None:
                return None
            try:
                moved = day + dt.timedelta(days=days)
            except OverflowError:
                return None
            sep = "-" if pattern is ISO_DATE else ""
            return f"{moved.year:04d}{sep}{moved.month:02d}{sep}{moved.day:02d}{m.group(4)}"
    return None


def date_forms(value: str) -> list[str]:
    """The date part of a date or date-time, as the leak check should look for it."""
    text = value.strip()
    for pattern, sep in ((ISO_DATE, "-"), (COMPACT_DATE, "")):
        m = pattern.match(text)
        if m and _valid(*m.groups()[:3]):
            y, mo, d = m.groups()[:3]
            return [f"{y}{sep}{mo}{sep}{d}"]
    return []
