"""Shifting DA and DT values by a patient's keyed offset."""

from __future__ import annotations

import datetime as dt


def _shift_date(text: str, days: int) -> str | None:
    """A DA value (YYYYMMDD, or the old YYYY.MM.DD) moved by ``days``; None if unreadable."""
    text = text.strip()
    if len(text) == 10 and text[4] == "." and text[7] == ".":
        text = text.replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        return (day + dt.timedelta(days=days)).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return None


def shift_da(value: str, days: int) -> str | None:
    """Shift every date of a DA value: multiple values and ranges (A-B) included."""
    out = []
    for part in value.split("\\"):
        if "-" in part:
            ends = []
            for end in part.split("-"):
                if not end.strip():
                    ends.append("")
                    continue
                shifted = _shift_date(end, days)
                if shifted is None:
                    return None
                ends.append(shifted)
            out.append("-".join(ends))
        elif not part.strip():
            out.append("")
        else:
            shifted = _shift_date(part, days)
            if shifted is None:
                return None
            out.append(shifted)
    return "\\".join(out)


def _shift_datetime(text: str, days: int) -> str | None:
    text = text.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None  # a year or a year and month alone cannot keep the day's place
    shifted = _shift_date(text[:8], days)
    return None if shifted is None else shifted + text[8:]


def shift_dt(value: str, days: int) -> str | None:
    """Shift the date part of every DT value; time and UTC offset stay."""
    out = []
    for part in value.split("\\"):
        if not part.strip():
            out.append("")
            continue
        # a range: the '-' of a UTC offset follows 14+ digits; a range '-' does not
        pieces = _split_range(part)
        shifted = []
        for piece in pieces:
            if not piece:
                shifted.append("")
                continue
            s = _shift_datetime(piece, days)
            if s is None:
                return None
            shifted.append(s)
        out.append("-".join(shifted))
    return "\\".join(out)


def _split_range(value: str) -> list[str]:
    """Split a DT range ``A-B``; a ``-`` before exactly four digits is a UTC offset."""
    for i, c in enumerate(value):
        if c != "-":
            continue
        tail = value[i + 1 :]
        if i == 0 or not tail or (len(tail) >= 8 and tail[:8].isdigit()):
            return [value[:i], tail]
    return [value]


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def written_forms(da: str) -> list[str]:
    """The ways people write the date YYYYMMDD in free text."""
    if len(da) < 8 or not da[:8].isdigit():
        return []
    y, m, d = int(da[:4]), int(da[4:6]), int(da[6:8])
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return []
    yy = y % 100
    month, mon = MONTHS[m - 1], MONTHS[m - 1][:3]
    forms = {
        f"{y}{m:02}{d:02}", f"{y}-{m:02}-{d:02}", f"{y}/{m:02}/{d:02}", f"{y}.{m:02}.{d:02}",
        f"{d:02}.{m:02}.{y}", f"{d}.{m}.{y}", f"{d:02}/{m:02}/{y}", f"{m:02}/{d:02}/{y}", f"{d}/{m}/{y}",
        f"{m}/{d}/{y}", f"{d:02}-{m:02}-{y}", f"{m:02}-{d:02}-{y}", f"{d:02}/{m:02}/{yy:02}",
        f"{m:02}/{d:02}/{yy:02}", f"{d:02}.{m:02}.{yy:02}", f"{d} {mon} {y}", f"{d} {month} {y}",
        f"{mon} {d}, {y}", f"{month} {d}, {y}", f"{mon} {d} {y}", f"{month} {d} {y}", f"{d}-{mon}-{y}",
        f"{d:02}-{mon}-{y}", f"{d:02} {mon} {y}", f"{d:02}{mon}{y}",
    }
    return sorted(forms, key=len, reverse=True)
