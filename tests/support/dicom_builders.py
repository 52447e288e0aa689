"""Small real DICOM datasets that the DICOM tests build and then change."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def ct_dataset(**values) -> Dataset:
    """A small CT-like dataset with file meta, plus ``values`` (keyword=value).

    A value of None leaves the keyword out."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.100"
    ds.StudyInstanceUID = "1.2.3.4.5.6.7.1"
    ds.SeriesInstanceUID = "1.2.3.4.5.6.7.2"
    ds.Modality = "CT"
    ds.PatientName = "Doe^John"
    ds.PatientID = "MRN12345"
    ds.StudyDate = "20240115"
    for key, value in values.items():
        if value is not None:
            setattr(ds, key, value)
    finish(ds)
    return ds


def finish(ds: Dataset) -> Dataset:
    """Give ``ds`` the file meta of an Explicit VR Little Endian file."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds
