"""The ``[dicom]`` recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The PS3.15 options that are recipe switches.  The two "Retain Longitudinal
# Temporal Information" options are not here: they follow ``[dates] policy``.
PROFILE_OPTIONS = (
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
)


class DicomOptions(BaseModel):
    """Options of the DICOM profile.  The defaults are the PS3.15 Basic
    Application Level Confidentiality Profile with no options."""

    model_config = ConfigDict(extra="forbid")

    retain_safe_private: bool = Field(False, description="keep the private attributes of PS3.15 Table E.3.10-1")
    retain_uids: bool = Field(False, description="keep UIDs instead of mapping them to keyed 2.25 UIDs")
    retain_device_identity: bool = Field(False, description="keep station names, serial numbers and the like")
    retain_institution_identity: bool = Field(False, description="keep institution names and addresses")
    retain_patient_characteristics: bool = Field(False, description="keep sex, age, size, weight and the like")
    clean_descriptors: bool = Field(False, description="keep descriptions and comments with identifying values cut out")
    clean_structured_content: bool = Field(False, description="keep SR content trees, cleaned, instead of dummying them")
    clean_graphics: bool = Field(False, description="keep graphic annotations, with their text cleaned")
    patient_name: Literal["pseudonym", "empty"] = Field(
        "pseudonym", description="PatientName becomes the patient's pseudonym, or empty"
    )
    unknown_text: Literal["remove", "keep"] = Field(
        "remove", description="text elements that Table E.1-1 does not list: values replaced by a dummy, or kept (PN never kept)"
    )
    burned_in: Literal["flag", "quarantine"] = Field(
        "flag", description="images that may show burned-in text: flag them, or withhold them (without erase-text)"
    )

    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in PROFILE_OPTIONS if getattr(self, name))
