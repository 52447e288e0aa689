"""The ``[wsi]`` recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class WsiOptions(BaseModel):
    """What the slide plugin does with labels, macros and files."""

    model_config = ConfigDict(extra="forbid")

    label: Literal["remove", "replace"] = Field(
        "remove",
        description="remove the label image, or replace it with a generated label that shows the slide pseudonym",
    )
    macro: Literal["remove", "blank-label", "keep"] = Field(
        "remove",
        description="remove the macro (overview) photo; 'blank-label' keeps it with the label end painted over "
        "(removed when that end cannot be told); 'keep' leaves it as it is and it usually shows the label: unsafe",
    )
    rename_files: bool = Field(
        True, description="name each output after the slide's keyed pseudonym instead of the input file name"
    )
    in_place: bool = Field(
        False,
        description="edit the input files themselves instead of writing copies (never the default; "
        "the input is changed for good and nothing is written to the output folder; TIFF slides only, "
        "an MRXS slide fails)",
    )
    dicom_label: Literal["remove", "replace", "keep"] = Field(
        "remove",
        description="DICOM WSI: leave out LABEL instances (with medscrub-dicom installed); 'replace' writes them "
        "with a generated label that shows the slide pseudonym",
    )
    previews: bool = Field(
        True,
        description="pictures of each label and macro for the QA report: what the output shows, or a card saying "
        "the image was removed (the input's pictures only with [run] internal_previews)",
    )
    dicom_overview: Literal["remove", "keep"] = Field(
        "remove", description="DICOM WSI: leave out OVERVIEW instances, which usually show the label"
    )
