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


# -- a series built from a volume ----------------------------------------------

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
VOLUME_PATIENT = "Volunteer^Vera"


def rotation(degrees_x: float, degrees_z: float):
    """A proper rotation: about x, then about z."""
    import numpy as np

    a, c = np.radians(degrees_x), np.radians(degrees_z)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ rx


def lps_affine(directions, spacing: tuple[float, float, float], origin: tuple[float, float, float]):
    """Voxel (column, row, slice) -> LPS mm, from three unit directions
    (the columns of ``directions``) and the steps along them."""
    import numpy as np

    affine = np.eye(4)
    affine[:3, :3] = np.asarray(directions, dtype=float) @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def _image_common(ds: Dataset, modality: str, series_uid: str, study_uid: str, frame_uid: str) -> None:
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = VOLUME_PATIENT
    ds.PatientID = "VOL-778899"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate, ds.StudyTime = "20240115", "101010"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StudyID, ds.AccessionNumber = "S1", "ACC5566"
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 3
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "medscrub tests"
    ds.InstitutionName = "Vera General Hospital"


def _pixel_module(ds: Dataset, stored) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = stored.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0


def volume_series(folder, stored, affine, *, modality: str = "MR", slope: float = 1.0, intercept: float = 0.0,
                  transfer_syntax: str = ExplicitVRLittleEndian, prefix: str = "IM") -> list:
    """Write ``stored`` (columns, rows, slices of stored values) as a series of
    single-frame MR or CT images placed by ``affine`` (voxel -> LPS).  File
    names run against the slice order, so a reader must sort by position."""
    from pathlib import Path

    import numpy as np
    from pydicom.uid import RLELossless, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns, rows, slices = stored.shape
    row_dir = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    column_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    spacing = [float(np.linalg.norm(affine[:3, 1])), float(np.linalg.norm(affine[:3, 0]))]
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k in range(slices):
        ds = Dataset()
        ds.SOPClassUID = CT_IMAGE if modality == "CT" else MR_IMAGE
        ds.SOPInstanceUID = generate_uid()
        _image_common(ds, modality, series, study, frame)
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [round(float(v), 6) for v in affine[:3, :3] @ [0, 0, k] + affine[:3, 3]]
        ds.ImageOrientationPatient = [round(float(v), 8) for v in (*row_dir, *column_dir)]
        ds.PixelSpacing = [round(s, 6) for s in spacing]
        ds.SliceThickness = round(float(np.linalg.norm(affine[:3, 2])), 6)
        if modality == "CT":
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = intercept, slope, "HU"
            ds.KVP, ds.AcquisitionNumber = 120, 1
        else:
            ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "GR", "SP", ""
            ds.MRAcquisitionType, ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "3D", 8.0, 3.0, 1
            if slope != 1.0 or intercept != 0.0:
                ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = intercept, slope, "US"
        _pixel_module(ds, stored)
        ds.Rows, ds.Columns = rows, columns
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        finish(ds)
        if transfer_syntax == RLELossless:
            ds.compress(RLELossless, generate_instance_uid=False)
        path = folder / f"{prefix}{slices - k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def enhanced_volume(path, stored, affine) -> object:
    """Write ``stored`` as one Enhanced MR object with per-frame positions and
    shared orientation and spacing, frames in reverse slice order."""
    from pathlib import Path

    import numpy as np
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    columns, rows, slices = stored.shape
    row_dir = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    column_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    ds = Dataset()
    ds.SOPClassUID = ENHANCED_MR_IMAGE
    ds.SOPInstanceUID = generate_uid()
    _image_common(ds, "MR", generate_uid(), generate_uid(), generate_uid())
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.ContentDate, ds.ContentTime, ds.AcquisitionDateTime = "20240115", "101010", "20240115101010"
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [round(float(v), 8) for v in (*row_dir, *column_dir)]
    measures.PixelSpacing = [round(float(np.linalg.norm(affine[:3, 1])), 6),
                             round(float(np.linalg.norm(affine[:3, 0])), 6)]
    measures.SliceThickness = round(float(np.linalg.norm(affine[:3, 2])), 6)
    shared = Dataset()
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    order = list(reversed(range(slices)))
    per_frame = []
    for k in order:
        position, group = Dataset(), Dataset()
        position.ImagePositionPatient = [round(float(v), 6) for v in affine[:3, :3] @ [0, 0, k] + affine[:3, 3]]
        group.PlanePositionSequence = Sequence([position])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.NumberOfFrames = slices
    _pixel_module(ds, stored)
    ds.Rows, ds.Columns = rows, columns
    ds.PixelData = np.ascontiguousarray(stored[:, :, order].transpose(2, 1, 0)).tobytes()
    finish(ds)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
