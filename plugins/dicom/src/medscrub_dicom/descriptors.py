"""Cleaning free text: cut out the identifying values found in the same file.

The method is a dictionary one: it knows only the names, IDs, dates and
institution, address and device values that the file itself holds.  A name
typed into a comment that appears nowhere else in the file is not found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .dates import written_forms

MIN_NAME_PART = 2
MIN_ID = 3
_SPACES = re.compile(r"[ \t]{2,}")
_SPLIT_NAME = re.compile(r"[\^=\s,]+")


@dataclass
class Terms:
    """Identifying values collected from one dataset, for cleaning its text."""

    names: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    phrases: set[str] = field(default_factory=set)  # institution, address, device: whole values
    _pattern: re.Pattern[str] | None = None

    def add(self, kind: str, value: str) -> None:
        value = str(value).strip()
        if not value:
            return
        self._pattern = None
        if kind == "name":
            for group in value.split("="):
                parts = [p for p in _SPLIT_NAME.split(group) if p]
                self.names.update(p for p in parts if len(p) >= MIN_NAME_PART)
                if len(parts) > 1:
                    self.phrases.add(" ".join(parts))
                    self.phrases.add(" ".join(reversed(parts[:2])))
                    self.phrases.add(", ".join(parts[:2]))
        elif kind == "date":
            for part in re.split(r"[\\\-]", value):
                self.dates.update(written_forms(part.strip()))
        elif kind == "id":
            for part in value.split("\\"):
                if len(part.strip()) >= MIN_ID:
                    self.ids.add(part.strip())
        elif kind in ("institution", "address", "device"):
            for part in value.split("\\"):
                if len(part.strip()) >= MIN_ID:
                    self.phrases.add(part.strip())

    def __bool__(self) -> bool:
        return bool(self.names or self.ids or self.dates or self.phrases)

    def pattern(self) -> re.Pattern[str] | None:
        if self._pattern is None and self:
            words = sorted(self.names | self.ids | self.dates | self.phrases, key=lambda w: (-len(w), w))
            alternatives = "|".join(re.escape(w) for w in words)
            # whole words only: "Ann" is cut from "Ann Smith", not from "Annual"
            self._pattern = re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])", re.IGNORECASE)
        return self._pattern

    def clean(self, text: str) -> str:
        pattern = self.pattern()
        if pattern is None or not text:
            return text
        cleaned = pattern.sub("", text)
        if cleaned == text:
            return text
        lines = [_SPACES.sub(" ", line).strip(" ,;:-") for line in cleaned.split("\n")]
        return "\n".join(lines).strip()
