"""The default treatment of every element, before site rules.

Sidecar keys are DICOM keywords (dcm2niix and other converters copy them),
so the lists follow the DICOM profile's spirit: patient, person,
institution and device identity go; UIDs are remapped with the same keyed
UIDs the DICOM plugin gives; dates follow ``[dates] policy``; technical
parameters stay.
"""

from __future__ import annotations

import re

# -- JSON sidecars -------------------------------------------------------------

# Keys starting with "Patient" are removed, except these technical ones.
PATIENT_TECHNICAL = {"PatientPosition", "PatientOrientation", "PatientSetupNumber"}
PERSON_KEYS = {
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "OperatorName",
    "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "RequestingPhysician", "ScheduledPerformingPhysicianName",
    "ReviewerName", "VerifyingObserverName", "PersonName", "ResponsiblePerson", "ContentCreatorName",
    "OtherPatientIDs", "OtherPatientNames", "OtherPatientIDsSequence", "MilitaryRank", "EthnicGroup",
    "Occupation", "ResponsibleOrganization", "IssuerOfPatientID", "MedicalRecordLocator", "CountryOfResidence",
    "RegionOfResidence", "MedicalAlerts", "Allergies", "SmokingStatus", "PregnancyStatus",
    "LastMenstrualDate", "AdditionalPatientHistory", "BranchOfService",
}
INSTITUTION_KEYS = {"InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "InstitutionCodeSequence"}
DEVICE_KEYS = {"DeviceSerialNumber", "StationName", "DeviceID", "DetectorID", "GantryID", "DeviceLabel", "DeviceUID"}
ID_KEYS = {
    "AccessionNumber", "StudyID", "RequestedProcedureID", "PerformedProcedureStepID", "ScheduledProcedureStepID",
    "AdmissionID", "ServiceEpisodeID", "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
}
FREE_TEXT_KEYS = {
    "ImageComments", "StudyComments", "AcquisitionComments", "FrameComments", "InterpretationText",
    "RequestedProcedureDescription", "PerformedProcedureStepDescription", "ReasonForStudy",
    "ReasonForTheRequestedProcedure", "StudyDescription", "TextComments", "Comments", "AdmittingDiagnosesDescription",
    "DerivationDescription", "ImagingServiceRequestComments", "RequestedProcedureComments", "VisitComments",
}
# Descriptors that name the acquisition: kept (BIDS tools read them), but
# cleaned of the patient's own identifying values when they hold any.
DESCRIPTOR_KEYS = {"SeriesDescription", "ProtocolName", "BodyPartExamined", "SequenceName", "ImageType"}
TIME_KEYS = {
    "AcquisitionTime", "StudyTime", "SeriesTime", "ContentTime", "InstanceCreationTime",
    "PerformedProcedureStepStartTime", "PerformedProcedureStepEndTime", "TimeOfLastCalibration",
}
# DICOM's well-known UIDs (transfer syntaxes, SOP classes) are not identifying.
WELL_KNOWN_UID_ROOT = "1.2.840.10008."


def json_default(key: str, value: object) -> str:
    """The profile's action for a sidecar key: keep, remove, uid, date, time, descriptor."""
    if key in PATIENT_TECHNICAL:
        return "keep"
    if key.startswith("Patient") or key in PERSON_KEYS:
        return "remove"
    if key in INSTITUTION_KEYS or key in DEVICE_KEYS or key in ID_KEYS or key in FREE_TEXT_KEYS:
        return "remove"
    if key.endswith("UID") or key.endswith("UIDs"):
        return "uid"
    if key.endswith("Date") or key.endswith("DateTime") or key.endswith("DateOfBirth"):
        return "date"
    if key in TIME_KEYS:
        return "time"
    if key in DESCRIPTOR_KEYS:
        return "descriptor"
    return "keep"


# -- TSV columns -----------------------------------------------------------------

# Column names that hold direct identifiers, matched on the lowercased name
# with separators removed.
IDENTIFYING_COLUMN = re.compile(
    r"name|birth|dob|address|street|zip|postcode|postal|phone|telephone|fax|email|mail|mrn|ssn|socialsecurity|"
    r"medicalrecord|insurance|patientid|accession|initials|comment|note|remark|freetext|url|ipaddress|"
    r"licen[cs]e|vehicle|account|nhs|passport"
)
STRUCTURE_COLUMNS = {"participant_id", "session_id", "filename"}


def normalise_column(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def tsv_default(column: str) -> str:
    """The profile's action for a TSV column: keep, remove, date, age, or the BIDS structure columns."""
    if column in STRUCTURE_COLUMNS:
        return column
    norm = normalise_column(column)
    if norm == "age":
        return "age"
    if IDENTIFYING_COLUMN.search(norm):
        return "remove"
    if norm in ("acqtime", "acqdate") or "date" in norm or norm.endswith("datetime"):
        return "date"
    return "keep"
