"""The ``[nifti]`` recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NiftiOptions(BaseModel):
    """Options for NIfTI images and BIDS datasets."""

    model_config = ConfigDict(extra="forbid")

    relabel_subjects: bool | None = Field(
        None,
        description="replace BIDS subject labels with patient pseudonyms in names and contents; "
        "unset: on when output.naming = 'pseudonymous' (renaming needs it)",
    )
    relabel_sessions: bool | None = Field(
        None, description="replace BIDS session labels with keyed per-subject labels; unset: as relabel_subjects"
    )
    patient_key: Literal["auto", "subject"] = Field(
        "auto",
        description="auto: the PatientID (else PatientName) of the subject's sidecars, as the DICOM plugin keys "
        "the same patient, else the subject label; subject: always the subject label",
    )
    text_files: Literal["replace", "keep", "drop"] = Field(
        "replace",
        description="README and CHANGES: replaced by a note (free text may carry PHI), kept (leak-checked "
        "against the dataset's identifying values), or left out",
    )
    age_cap: int | None = Field(
        89, ge=0, description="participants' ages above this are written as this (HIPAA: ages over 89); None keeps them"
    )
    compress_level: int = Field(
        1, ge=1, le=9,
        description="gzip level for .nii.gz outputs: 1 (nibabel's default) is 3-4 times faster than 6 "
        "for files about a tenth larger",
    )
