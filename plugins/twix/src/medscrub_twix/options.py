"""The ``[twix]`` recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .catalog import CATEGORIES

_SAFE_TEXT = r'^[ -!#-~]*$'  # printable ASCII without the double quote


class TwixOptions(BaseModel):
    """Options of the twix plugin; site rules (``[[rules]]`` with ``format = "twix"``)
    override them field by field."""

    model_config = ConfigDict(extra="forbid")

    protocol_name: Literal["keep", "remove"] = Field(
        "keep", description="protocol names (file header, tProtocolName, SequenceDescription): keep or overwrite with x"
    )
    replacement: str = Field(
        "ANONYMISED", min_length=1, max_length=64, pattern=_SAFE_TEXT,
        description="text written over institution names, addresses, physicians and free text",
    )
    pad: str = Field(" ", min_length=1, max_length=1, pattern=_SAFE_TEXT,
                     description="character that pads a shorter pseudonym or replacement to the field's length")
    extra_fields: dict[str, str] = Field(
        default_factory=dict,
        description="more fields to scrub: field name -> category (name, id, birth-date, date, uid, text, ...)",
    )
    zero_filler: bool = Field(
        True, description="zero the bytes no reader uses: header padding, unused file-header entries, gaps"
    )

    @field_validator("extra_fields")
    @classmethod
    def _categories(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {k: v for k, v in value.items() if v not in CATEGORIES}
        if bad:
            raise ValueError(f"unknown categories {bad}; use one of {', '.join(CATEGORIES)}")
        return {k.lower(): v for k, v in value.items()}
