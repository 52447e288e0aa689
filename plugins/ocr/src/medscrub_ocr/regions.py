"""Region rules: known devices' text areas, blanked without OCR.

A rule file is TOML with ``[[device]]`` tables::

    [[device]]
    manufacturer = "ALOKA"        # case-insensitive, part of (0008,0070)
    model = "SSD-4000"            # optional, part of (0008,1090)
    rows = 480                    # optional, exact
    columns = 640                 # optional, exact
    boxes = [[0, 0, 640, 22]]     # x0, y0, x1, y1 in pixels, end exclusive
    note = "patient banner"       # why: shown in docs, not in outputs

Every rule that matches an image adds its boxes; the packaged file comes
first and a site's files (``[ocr] region_rules``) after it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medscrub import MedscrubError

from .engines import Box


class RegionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manufacturer: str = Field(min_length=1)
    model: str | None = None
    rows: int | None = Field(None, gt=0)
    columns: int | None = Field(None, gt=0)
    boxes: list[tuple[int, int, int, int]] = Field(min_length=1)
    note: str = ""

    @model_validator(mode="after")
    def _boxes(self):
        for x0, y0, x1, y1 in self.boxes:
            if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
                raise ValueError(f"box {[x0, y0, x1, y1]} is not x0, y0, x1, y1 with x0 < x1 and y0 < y1")
        return self


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: list[RegionRule] = Field(default_factory=list)


@dataclass(frozen=True)
class Device:
    manufacturer: str
    model: str
    rows: int
    columns: int


def load_rules(path: Path | None = None) -> list[RegionRule]:
    """The rules of one file; None: the packaged file."""
    if path is None:
        text = resources.files("medscrub_ocr").joinpath("data/regions.toml").read_text(encoding="utf-8")
        source = "medscrub_ocr/data/regions.toml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise MedscrubError(f"region rules {path}: cannot read: {e.strerror or e}") from None
        source = str(path)
    try:
        return _RuleFile.model_validate(tomllib.loads(text)).device
    except tomllib.TOMLDecodeError as e:
        raise MedscrubError(f"region rules {source}: not valid TOML: {e}") from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MedscrubError(f"region rules {source}: {where}: {first['msg']}") from None


def matching(rules: list[RegionRule], device: Device) -> list[RegionRule]:
    found = []
    for rule in rules:
        if rule.manufacturer.lower() not in device.manufacturer.lower():
            continue
        if rule.model is not None and rule.model.lower() not in device.model.lower():
            continue
        if rule.rows is not None and rule.rows != device.rows:
            continue
        if rule.columns is not None and rule.columns != device.columns:
            continue
        found.append(rule)
    return found


def boxes_for(rules: list[RegionRule], device: Device) -> list[Box]:
    """The boxes of every matching rule, clipped to the image."""
    out = []
    for rule in matching(rules, device):
        for x0, y0, x1, y1 in rule.boxes:
            x1, y1 = min(x1, device.columns), min(y1, device.rows)
            if x1 > x0 and y1 > y0:
                out.append((x0, y0, x1, y1))
    return out
