"""The leak check skips the entropy-coded data of compressed pixel data and
still searches the codestreams' marker segments, where text can hide."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dicom_builders import finish
from PIL import Image
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from medscrub_dicom.codestreams import j2k_ranges, jpeg_ranges, sample_ranges
from medscrub_dicom.encoder import encode_file

pytest.importorskip("medscrub_dicom")

NAME = "Kowalczyk^Marianna"


def jpeg(comment: bytes | None = None) -> bytes:
    pixels = (np.add.outer(np.arange(64), np.arange(96)) % 251).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90, **({"comment": comment} if comment else {}))
    return out.getvalue()


def sc_image(folder, frame: bytes):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID, ds.BurnedInAnnotation = "OT", NAME, "MRN99887766", "NO"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 64, 96, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([frame])
    finish(ds)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds["PixelData"].VR = "OB"
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(folder / "sc.dcm", enforce_file_format=True)
    return ds


def test_jpeg_ranges_leave_marker_segments_out():
    data = jpeg(b"Kowalczyk was here")
    ranges = jpeg_ranges(data)
    assert ranges and len(ranges) == 1
    (a, b), at = ranges[0], data.index(b"Kowalczyk")
    assert not a <= at < b  # the COM segment is searched
    assert data[b:b + 2] == b"\xff\xd9" and data[a - 2:a] != b"\xff\xd9"  # up to EOI
    assert jpeg_ranges(data[:-2]) is None  # no EOI: nothing is skipped


def test_real_codestreams_are_parsed_to_the_end():
    for name, syntax in (("JPGLosslessP14SV1_1s_1f_8b.dcm", None), ("emri_small_jpeg_ls_lossless.dcm", None),
                         ("US1_J2KR.dcm", None), ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5")):
        path = get_testdata_file(name, download=False)
        if path is None:
            continue
        from pydicom import dcmread

        ds = dcmread(path)
        value = ds._dict[0x7FE00010].value
        ranges = sample_ranges(value, syntax or str(ds.file_meta.TransferSyntaxUID))
        assert sum(b - a for a, b in ranges) > 0.9 * len(value), name
        assert all(0 <= a < b <= len(value) for a, b in ranges)
    assert j2k_ranges(b"\xff\x4f\xff\x51" + b"\x00" * 10) is None


def test_text_in_a_jpeg_comment_is_found_by_the_leak_check(tmp_path, medscrub_run):
    sc_image(tmp_path / "in", jpeg(b"patient Kowalczyk"))
    result = medscrub_run(tmp_path / "in", tmp_path / "out", workers=1)
    (record,) = result.records.values()
    assert record["status"] == "failed" and "leak check: name" in record["reason"]
    assert not (tmp_path / "out" / "sc.dcm").exists()


def test_clean_compressed_pixels_are_skipped_by_the_search(tmp_path, medscrub_run):
    from medscrub import Item
    from medscrub.context import RunConfig, RunContext
    from medscrub.pseudonyms import Secret

    sc_image(tmp_path / "in", jpeg())
    context = RunContext(RunConfig(None, Secret(b"s" * 32, "t"), tmp_path / "in", tmp_path / "x", plugins=("dicom",)))
    path = tmp_path / "in" / "sc.dcm"
    asset = context.pm.hook.medscrub_read(item=Item("sc.dcm", "dicom", (path,), path.parent), context=context)
    context.pm.hook.medscrub_apply_rules(asset=asset, rules=context.rules, context=context)
    encoded = encode_file(asset.data)  # as the writer encodes it, after the profile
    frame = len(jpeg())
    assert encoded is not None and sum(b - a for a, b in encoded.samples) > 0.5 * frame
    result = medscrub_run(tmp_path / "in", tmp_path / "out", workers=1)
    assert result.exit_code == 0, result.records
