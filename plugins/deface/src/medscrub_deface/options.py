"""The ``[deface]`` recipe section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DefaceOptions(BaseModel):
    """Options of the ``deface`` cleaner."""

    model_config = ConfigDict(extra="forbid")

    ears: bool = Field(
        False, description="also remove both ears: everything beside the head at ear level farther than 10 mm from "
        "the predicted brain (the outer ear and the scalp round it)"
    )
