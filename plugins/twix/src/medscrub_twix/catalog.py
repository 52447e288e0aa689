"""Which twix header fields identify someone, and what each holds.

Names are matched without regard to case: the same field is spelled
``StudyLOID`` in one buffer and ``StudyLoid`` in another.
"""

from __future__ import annotations

import re

# What a field holds decides how it is replaced.
NAME = "name"  # the patient's name
ID = "id"  # the patient's ID
BIRTH_DATE = "birth-date"
SEX = "sex"
AGE = "age"
WEIGHT = "weight"
HEIGHT = "height"
INSTITUTION = "institution"
ADDRESS = "address"
PHYSICIAN = "physician"  # physicians and operators
DEVICE = "device"  # the scanner serial number
UID = "uid"  # UIDs and LOIDs: serial, exam date and database keys inside
DATE = "date"
IDENTIFIER = "identifier"  # other identifying numbers (accession, study ID)
TEXT = "text"  # free text that may name someone
PROTOCOL = "protocol"  # kept unless the recipe says remove

CATEGORIES = (NAME, ID, BIRTH_DATE, SEX, AGE, WEIGHT, HEIGHT, INSTITUTION, ADDRESS, PHYSICIAN, DEVICE, UID, DATE,
              IDENTIFIER, TEXT, PROTOCOL)

_FIELDS = {
    NAME: ("tPatientName", "PatientName", "PatientsName"),
    ID: ("PatientID", "tPatientID", "PatientsID"),
    BIRTH_DATE: ("PatientBirthDay", "tPatientBirthDay", "PatientBirthDate", "PatientsBirthDate"),
    SEX: ("PatientSex", "lPatientSex", "PatientsSex"),
    AGE: ("flPatientAge", "PatientAge", "PatientsAge"),
    WEIGHT: ("flUsedPatientWeight", "flPatientWeight", "PatientWeight", "PatientsWeight"),
    HEIGHT: ("flPatientHeight", "PatientHeight", "PatientsSize"),
    INSTITUTION: ("InstitutionName", "tInstitutionName", "InstitutionalDepartmentName", "StationName"),
    ADDRESS: ("InstitutionAddress", "tInstitutionAddress"),
    DEVICE: ("DeviceSerialNumber", "tDeviceSerialNumber"),
    UID: ("DICOM_UID_ROOT", "FrameOfReference", "tFrameOfReference", "ExamMemoryUID", "ReferencedImageSequence",
          "Study", "Patient", "StudyInstanceUID", "SeriesInstanceUID"),
    DATE: ("atTXCalibDate", "StudyDate", "tStudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"),
    IDENTIFIER: ("AccessionNumber", "tAccessionNumber", "StudyID", "tStudyID"),
    TEXT: ("tStudyDescription", "StudyDescription", "PatientComments", "tPatientComments",
           "AdditionalPatientHistory", "RequestedProcedureDescription"),
    PROTOCOL: ("tProtocolName", "ProtocolName", "SequenceDescription", "tSequenceDescription", "SeriesDescription"),
}
_BY_NAME = {name.lower(): category for category, names in _FIELDS.items() for name in names}
_PATTERNS = (
    (re.compile(r"t?referenceimage\d+$", re.I), UID),
    (re.compile(r".*loid", re.I), UID),
    (re.compile(r".*(physician|operator)", re.I), PHYSICIAN),
)


def category(name: str, extra: dict[str, str] | None = None) -> str | None:
    """The category of a field name (or an ASCCONV path's last name), or None."""
    key = name.lower()
    if extra and key in extra:
        return extra[key]
    if key in _BY_NAME:
        return _BY_NAME[key]
    for pattern, cat in _PATTERNS:
        if pattern.match(name):
            return cat
    return None


def known_fields() -> dict[str, tuple[str, ...]]:
    """Every named field by category, for the docs and ``medscrub_check_rules``."""
    return dict(_FIELDS)
