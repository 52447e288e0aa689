"""The DICOM profile engine on real files: actions, options, depth, UIDs,
dates, markers, private elements, DICOMDIR, encodings and the verifier."""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
import subprocess
import warnings
from pathlib import Path

import pydicom
import pytest
from dicom_builders import ct_dataset
from pydicom import Dataset, Sequence
from pydicom.data import get_charset_files, get_testdata_file

from medscrub import BadInput, Item
from medscrub.context import RunConfig, RunContext
from medscrub.output import OutputSink
from medscrub.pipeline import run_batch
from medscrub.pseudonyms import Secret
from medscrub_dicom import mark_clean_pixel_data
from medscrub_dicom.profile import resolve_row
from medscrub_dicom.table import Row, load_table
from medscrub_dicom.verify import check_dataset, verify_output

warnings.filterwarnings("ignore", module="pydicom")

SECRET = Secret(b"s" * 32)
PLUGIN_ROOT = Path(__file__).resolve().parents[2] / "plugins" / "dicom"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


# -- helpers -------------------------------------------------------------------


def make_context(tmp_path: Path, recipe: str = "", extra=()) -> RunContext:
    (tmp_path / "in").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "recipe.toml"
    path.write_text(recipe)
    return RunContext(RunConfig(path, SECRET, tmp_path / "in", tmp_path / "out", extra_plugins=tuple(extra)))


def base_dataset(**values) -> Dataset:
    """A small CT-like dataset with file meta, plus ``values`` (keyword=value)."""
    return ct_dataset(**{"StudyTime": "101500", **values})


def save(ds: Dataset, folder: Path, name: str = "in.dcm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


def clean(context: RunContext, source: Dataset | Path, name: str = "in.dcm"):
    """Read, clean and inspect one file through the registered hooks; the asset."""
    path = source if isinstance(source, Path) else save(source, context.input_root, name)
    hook = context.pm.hook
    item = Item(path.name, "dicom", (path,), path.parent)
    asset = hook.medscrub_read(item=item, context=context)
    assert hook.medscrub_apply_rules(asset=asset, rules=context.rules, context=context)
    hook.medscrub_inspect(asset=asset, context=context)
    return asset


def write(context: RunContext, asset, relative: str = "out.dcm") -> Path | None:
    sink = OutputSink(context.output_root, Path(relative).as_posix())
    assert context.pm.hook.medscrub_write(asset=asset, sink=sink, context=context)
    written = sink.commit()
    return context.output_root / written[0] if written else None


def roundtrip(context: RunContext, source: Dataset | Path) -> Dataset:
    asset = clean(context, source)
    return pydicom.dcmread(write(context, asset))


# -- the table -------------------------------------------------------------------


def test_generated_table_matches_a_fresh_generation():
    spec = importlib.util.spec_from_file_location("make_tables", PLUGIN_ROOT / "scripts" / "make_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


def test_table_holds_every_row():
    table = load_table()
    assert table.edition == "2026d"
    assert table.acknowledgement == "DICOM PS3.15 2026d, © NEMA"
    assert len(table.rows) + len(table.patterns) + 1 == 657  # + the private attributes row
    assert {p.tag for p in table.patterns} == {"(50xx,xxxx)", "(60xx,4000)", "(60xx,3000)"}
    assert table.rows[0x00100010].basic == "Z"
    assert ("SIEMENS MR HEADER", 0x0019, 0x0C) in table.safe_private


@pytest.mark.parametrize(
    "basic, expected",
    [("X/Z", "Z"), ("X/D", "D"), ("Z/D", "D"), ("X/Z/D", "D"), ("X/Z/U*", "U*"), ("X", "X"), ("U", "U")],
)
def test_compound_actions_resolve_to_the_conformant_choice(basic, expected):
    assert resolve_row(Row(basic, {}, "x"), set()) == expected


def test_an_enabled_clean_override_beats_keep():
    row = Row("X/D", {"retain_device_identity": "K", "retain_longitudinal_modified_dates": "C"}, "x")
    assert resolve_row(row, {"retain_device_identity"}) == "K"
    assert resolve_row(row, {"retain_device_identity", "retain_longitudinal_modified_dates"}) == "C"


# -- basic profile actions ---------------------------------------------------------


def test_basic_profile_actions(tmp_path):
    context = make_context(tmp_path)
    ds = base_dataset(
        OperatorsName="Nurse^Ann",  # X/Z/D -> D
        AccessionNumber="ACC998877",  # Z
        PatientAddress="1 Main Street",  # X
        FrameOfReferenceUID="1.2.3.4.5.6.7.9",  # U
        StudyDescription="Head CT for John Doe",  # X (clean only with clean_descriptors)
        ImageType=["ORIGINAL", "PRIMARY"],  # not listed, not text: kept
        Manufacturer="ACME",  # structural text: kept
        PositionReferenceIndicator="XY",  # unlisted text: a dummy value
    )
    out = roundtrip(context, ds)
    assert out.OperatorsName == "ANONYMOUS"
    assert out.AccessionNumber == ""
    assert "PatientAddress" not in out
    assert out.FrameOfReferenceUID.startswith("2.25.")
    assert "StudyDescription" not in out
    assert list(out.ImageType) == ["ORIGINAL", "PRIMARY"]
    assert out.Manufacturer == "ACME"
    assert out.PositionReferenceIndicator == "REMOVED"
    pseudonym = context.patient_pseudonym("MRN12345")
    assert out.PatientID == pseudonym and out.PatientName == pseudonym
    assert out.SOPClassUID == CT_IMAGE


def test_changes_never_hold_original_values(tmp_path):
    context = make_context(tmp_path)
    asset = clean(context, base_dataset(OperatorsName="Nurse^Ann", AccessionNumber="ACC998877"))
    text = repr(asset.changes)
    for original in ("Doe", "MRN12345", "ACC998877", "Nurse", "20240115", "1.2.3.4.5.6.7.100"):
        assert original not in text
    assert {"name", "id", "date", "uid"} <= set(asset.identifiers)
    assert "MRN12345" in asset.identifiers["id"]


def test_patient_name_empty_option(tmp_path):
    context = make_context(tmp_path, '[dicom]\npatient_name = "empty"\n')
    out = roundtrip(context, base_dataset())
    assert out.PatientName == "" and out.PatientID == context.patient_pseudonym("MRN12345")


def test_unknown_text_keep_option(tmp_path):
    ds = base_dataset(PositionReferenceIndicator="XY", ReceiveCoilName="HEAD", ContrastBolusRoute="IV")
    assert roundtrip(make_context(tmp_path / "a"), ds).ContrastBolusRoute == "REMOVED"
    out = roundtrip(make_context(tmp_path / "b", '[dicom]\nunknown_text = "keep"\n'), ds)
    assert out.ContrastBolusRoute == "IV" and out.PositionReferenceIndicator == "XY"


def test_unknown_dictionary_entry_and_group_lengths_are_removed(tmp_path):
    ds = base_dataset()
    ds.add_new(0x00081234, "UN", b"secret")  # (0008,1234): no dictionary entry
    ds.add_new(0x00100000, "UL", 8)  # group length
    out = roundtrip(make_context(tmp_path), ds)
    assert 0x00081234 not in out and 0x00100000 not in out


# -- options ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, keyword, value",
    [
        ("retain_uids", "SOPInstanceUID", "1.2.3.4.5.6.7.100"),
        ("retain_device_identity", "StationName", "CTSCANNER01"),
        ("retain_device_identity", "DeviceSerialNumber", "SN-4455"),
        ("retain_institution_identity", "InstitutionName", "Saint Elsewhere"),
        ("retain_patient_characteristics", "PatientSex", "F"),
        ("retain_patient_characteristics", "PatientAge", "042Y"),
        ("retain_patient_characteristics", "PatientWeight", "71.5"),
    ],
)
def test_retain_options_keep_their_attributes(tmp_path, option, keyword, value):
    ds = base_dataset(**{keyword: value}) if keyword != "SOPInstanceUID" else base_dataset()
    without = roundtrip(make_context(tmp_path / "a"), ds)
    assert str(without.get(keyword, "")) != value
    kept = roundtrip(make_context(tmp_path / "b", f"[dicom]\n{option} = true\n"), ds)
    assert str(kept.get(keyword)) == value


def test_clean_descriptors_cuts_identifying_values(tmp_path):
    ds = base_dataset(
        StudyDescription="CT head for John Doe, MRN12345, seen 15/01/2024 at Saint Elsewhere",
        InstitutionName="Saint Elsewhere",
        ImageComments="Annual follow-up; no findings",
    )
    out = roundtrip(make_context(tmp_path, "[dicom]\nclean_descriptors = true\n"), ds)
    assert out.StudyDescription.startswith("CT head for")
    for word in ("John", "Doe", "MRN12345", "15/01/2024", "Saint Elsewhere"):
        assert word not in out.StudyDescription
    assert out.ImageComments == "Annual follow-up; no findings"  # "Ann" is a name part; "Annual" is not


def _sr_content() -> Sequence:
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    text.TextValue = "Reviewed with John Doe on 2024-01-15"
    person = Dataset()
    person.RelationshipType = "HAS OBS CONTEXT"
    person.ValueType = "PNAME"
    person.PersonName = "Smith^Anna"
    uidref = Dataset()
    uidref.ValueType = "UIDREF"
    uidref.UID = "1.2.3.4.5.6.7.100"
    nested = Dataset()
    nested.ValueType = "CONTAINER"
    nested.ContentSequence = Sequence([person, uidref])
    return Sequence([text, nested])


def test_basic_profile_replaces_structured_content_with_a_dummy(tmp_path):
    """D on a sequence: the tree keeps its shape (so Type 1 attributes and
    relationships stay valid), every value in it a dummy, codes included."""
    context = make_context(tmp_path)
    out = roundtrip(context, base_dataset(ContentSequence=_sr_content()))
    text, nested = out.ContentSequence
    assert text.RelationshipType == "CONTAINS" and text.ValueType == "TEXT"  # CS: the structure
    assert text.TextValue == "REMOVED"
    person, uidref = nested.ContentSequence
    assert person.PersonName == "ANONYMOUS"
    assert uidref.UID == context.pseudonyms.uid("1.2.3.4.5.6.7.100")


def test_clean_structured_content_keeps_a_cleaned_tree(tmp_path):
    context = make_context(tmp_path, "[dicom]\nclean_structured_content = true\n")
    out = roundtrip(context, base_dataset(ContentSequence=_sr_content()))
    text, nested = out.ContentSequence
    assert "John" not in text.TextValue and "2024-01-15" not in text.TextValue
    assert text.TextValue.startswith("Reviewed with")
    person, uidref = nested.ContentSequence
    assert str(person.PersonName) == context.pseudonyms.pseudonym("person", "Smith^Anna")
    assert uidref.UID == context.pseudonyms.uid("1.2.3.4.5.6.7.100") == out.SOPInstanceUID


def test_clean_graphics_cleans_annotation_text(tmp_path):
    text_object = Dataset()
    text_object.UnformattedTextValue = "John Doe L"
    annotation = Dataset()
    annotation.GraphicLayer = "LAYER1"
    annotation.TextObjectSequence = Sequence([text_object])
    ds = base_dataset(GraphicAnnotationSequence=Sequence([annotation]))
    basic = roundtrip(make_context(tmp_path / "a"), ds)
    assert basic.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue == "REMOVED"
    out = roundtrip(make_context(tmp_path / "b", "[dicom]\nclean_graphics = true\n"), ds)
    assert out.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue == "L"


def test_overlays_and_curves_are_removed(tmp_path):
    ds = base_dataset()
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60003000, "OW", b"\x01\x00" * 8)
    ds.add_new(0x60024000, "LT", "John Doe")
    ds.add_new(0x50000005, "US", 2)
    out = roundtrip(make_context(tmp_path), ds)
    assert not any(0x5000 <= e.tag.group <= 0x60FF for e in out)


# -- depth -----------------------------------------------------------------------


def test_every_depth_is_processed(tmp_path):
    inner = Dataset()
    inner.ReferencedSOPClassUID = CT_IMAGE
    inner.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.55"
    inner.PersonName = "Deep^Person"
    middle = Dataset()
    middle.ReferencedImageSequence = Sequence([inner])
    middle.AccessionNumber = "ACC1"
    request = Dataset()
    request.RequestedProcedureID = "RP77"
    request.ReferencedStudySequence = Sequence([middle])
    ds = base_dataset(RequestAttributesSequence=Sequence([request]),
                      SourceImageSequence=Sequence([inner.copy()]))
    context = make_context(tmp_path)
    out = roundtrip(context, ds)
    assert "RequestAttributesSequence" not in out  # X in the basic profile
    source = out.SourceImageSequence[0]  # X/Z/U*: kept, UIDs mapped inside
    assert source.ReferencedSOPClassUID == CT_IMAGE
    assert source.ReferencedSOPInstanceUID == context.pseudonyms.uid("1.2.3.4.5.6.7.55")
    assert source.PersonName == "ANONYMOUS"


def test_nested_patient_ids_map_by_their_own_value(tmp_path):
    other = Dataset()
    other.PatientID = "OTHER-777"
    other.PatientName = "Roe^Richard"
    ds = base_dataset(SourcePatientGroupIdentificationSequence=Sequence([other]))
    context = make_context(tmp_path, "[dicom]\nunknown_text = \"keep\"\n")
    out = roundtrip(context, ds)
    item = out.SourcePatientGroupIdentificationSequence[0]
    assert item.PatientID == context.patient_pseudonym("OTHER-777") == item.PatientName
    assert out.PatientID == context.patient_pseudonym("MRN12345")


# -- private elements --------------------------------------------------------------


def _with_private(creator: str, block: int, offset: int, vr: str, value) -> Dataset:
    ds = base_dataset()
    ds.add_new(0x00190000 | block, "LO", creator)
    ds.add_new(0x00190000 | (block << 8) | offset, vr, value)
    ds.add_new(0x00190000 | (block << 8) | 0x99, "LO", "Doe^John")  # not safe
    return ds


def test_private_elements_and_creators_are_removed(tmp_path):
    out = roundtrip(make_context(tmp_path), _with_private("SIEMENS MR HEADER", 0x10, 0x0C, "DS", "1000"))
    assert not any(e.tag.is_private for e in out)


@pytest.mark.parametrize("block", [0x10, 0x23])
def test_safe_private_is_matched_by_creator_and_offset(tmp_path, block):
    context = make_context(tmp_path, "[dicom]\nretain_safe_private = true\n")
    out = roundtrip(context, _with_private("SIEMENS MR HEADER", block, 0x0C, "DS", "1000"))
    assert out[0x00190000 | (block << 8) | 0x0C].value == "1000"
    assert out[0x00190000 | block].value == "SIEMENS MR HEADER"
    assert (0x00190000 | (block << 8) | 0x99) not in out


def test_safe_private_needs_the_right_creator(tmp_path):
    context = make_context(tmp_path, "[dicom]\nretain_safe_private = true\n")
    out = roundtrip(context, _with_private("SOMEONE ELSE", 0x10, 0x0C, "DS", "1000"))
    assert not any(e.tag.is_private for e in out)


# -- UIDs ------------------------------------------------------------------------


def test_uids_stay_consistent_across_files_and_well_known_ones_stay(tmp_path):
    context = make_context(tmp_path)
    first = base_dataset(FrameOfReferenceUID="1.2.840.10008.1.4.1.1")  # a well-known frame of reference
    reference = Dataset()
    reference.ReferencedSOPClassUID = CT_IMAGE
    reference.ReferencedSOPInstanceUID = first.SOPInstanceUID
    second = base_dataset(SOPInstanceUID="1.2.3.4.5.6.7.101", ReferencedImageSequence=Sequence([reference]))
    second.file_meta.MediaStorageSOPInstanceUID = second.SOPInstanceUID
    second.SOPClassesInStudy = [CT_IMAGE, "1.2.840.10008.5.1.4.1.1.4"]
    second.add_new(0x0040A124, "UI", ["1.2.3.9.1", "1.2.3.9.2"])  # UID, multi-valued
    a = roundtrip(context, first)
    b = roundtrip(make_context(tmp_path / "again"), second)  # another context: same secret
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert a.FrameOfReferenceUID == "1.2.840.10008.1.4.1.1"
    assert list(b.SOPClassesInStudy) == [CT_IMAGE, "1.2.840.10008.5.1.4.1.1.4"]
    assert list(b[0x0040A124].value) == [context.pseudonyms.uid("1.2.3.9.1"), context.pseudonyms.uid("1.2.3.9.2")]
    assert a.StudyInstanceUID == b.StudyInstanceUID


# -- dates -----------------------------------------------------------------------


def test_dates_by_policy(tmp_path):
    ds = base_dataset(SeriesDate="20240120", SeriesTime="103000", PatientBirthDate="19700101",
                      AcquisitionDateTime="20240120103000.5+0100")
    removed = roundtrip(make_context(tmp_path / "r"), ds)
    assert removed.StudyDate == "" and removed.SeriesDate == "19000101"
    assert removed.LongitudinalTemporalInformationModified == "REMOVED"
    kept = roundtrip(make_context(tmp_path / "k", '[dates]\npolicy = "keep"\n'), ds)
    assert kept.StudyDate == "20240115" and kept.SeriesDate == "20240120"
    assert kept.LongitudinalTemporalInformationModified == "UNMODIFIED"
    context = make_context(tmp_path / "s", '[dates]\npolicy = "shift"\n')
    shifted = roundtrip(context, ds)
    days = context.pseudonyms.date_offset("MRN12345")
    assert days < 0
    expected = (dt.date(2024, 1, 15) + dt.timedelta(days=days)).strftime("%Y%m%d")
    assert shifted.StudyDate == expected
    parse = dt.datetime.strptime
    assert (parse(shifted.SeriesDate, "%Y%m%d") - parse(shifted.StudyDate, "%Y%m%d")).days == 5  # interval kept
    assert shifted.StudyTime == "101500"  # times stay
    assert shifted.AcquisitionDateTime.endswith("103000.5+0100")
    assert shifted.PatientBirthDate == ""  # Z unless patient characteristics are kept
    assert shifted.LongitudinalTemporalInformationModified == "MODIFIED"


def test_birth_date_follows_the_policy_with_patient_characteristics(tmp_path):
    context = make_context(tmp_path, '[dates]\npolicy = "shift"\n[dicom]\nretain_patient_characteristics = true\n')
    out = roundtrip(context, base_dataset(PatientBirthDate="19700101", PatientAge="054Y"))
    days = context.pseudonyms.date_offset("MRN12345")
    assert out.PatientBirthDate == (dt.date(1970, 1, 1) + dt.timedelta(days=days)).strftime("%Y%m%d")
    assert out.PatientAge == "054Y"


# -- markers ---------------------------------------------------------------------


def test_markers_and_method_codes(tmp_path):
    recipe = '[dates]\npolicy = "shift"\n[dicom]\nretain_uids = true\nclean_descriptors = true\n'
    out = roundtrip(make_context(tmp_path, recipe), base_dataset())
    assert out.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113105", "113107", "113110"]
    assert all(item.CodingSchemeDesignator == "DCM" for item in out.DeidentificationMethodCodeSequence)
    assert any(v.startswith("medscrub-dicom") for v in out.DeidentificationMethod)
    mark_clean_pixel_data(out)
    assert "113101" in [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert "Clean Pixel Data Option" in out.DeidentificationMethod


# -- burned-in text --------------------------------------------------------------


def test_burned_in_text_flags_and_quarantine(tmp_path):
    ultrasound = Path(get_testdata_file("US1_UNCR.dcm"))
    asset = clean(make_context(tmp_path / "a"), ultrasound)
    assert asset.flags["burned_in_text"] == "possible" and asset.quarantine is None
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ct.BurnedInAnnotation = "YES"
    assert clean(make_context(tmp_path / "b"), ct).flags["burned_in_text"] == "yes"
    held = clean(make_context(tmp_path / "c", '[dicom]\nburned_in = "quarantine"\n'), ultrasound)
    assert held.quarantine and "burned-in" in held.quarantine
    plain_ct = clean(make_context(tmp_path / "d"), Path(get_testdata_file("CT_small.dcm")))
    assert "burned_in_text" not in plain_ct.flags


# -- files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["MR_small_bigendian.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "image_dfl.dcm", "MR_small_implicit.dcm",
     "MR_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm"],
)
def test_pixel_data_is_copied_byte_for_byte(tmp_path, name):
    source = Path(get_testdata_file(name))
    original = pydicom.dcmread(source)
    out = roundtrip(make_context(tmp_path), source)
    assert out.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert out.PixelData == original.PixelData
    assert out.preamble is not None and out.PatientIdentityRemoved == "YES"


def test_file_without_preamble_becomes_a_part10_file(tmp_path):
    source = Path(get_testdata_file("rtstruct.dcm"))  # no preamble, no file meta
    assert source.read_bytes()[128:132] != b"DICM"
    context = make_context(tmp_path)
    claim = context.pm.hook.medscrub_claim(path=source, context=context)
    assert claim is not None and claim.format == "dicom"
    out_path = write(context, clean(context, source))
    assert out_path.read_bytes()[128:132] == b"DICM"
    out = pydicom.dcmread(out_path)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


def test_other_files_are_not_claimed_and_bad_ones_fail_clearly(tmp_path):
    context = make_context(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("not a dicom file at all")
    assert context.pm.hook.medscrub_claim(path=text, context=context) is None
    truncated = tmp_path / "in" / "short.dcm"
    truncated.write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes()[:300])
    with pytest.raises(BadInput):
        clean(context, truncated)


def test_character_sets_are_kept_and_values_decoded(tmp_path):
    source = Path(get_charset_files("chrH31.dcm")[0])  # Japanese, ISO 2022
    original = pydicom.dcmread(source)
    context = make_context(tmp_path)
    asset = clean(context, source)
    assert str(original.PatientName) in asset.identifiers["name"]
    out = pydicom.dcmread(write(context, asset))
    assert out.SpecificCharacterSet == original.SpecificCharacterSet
    assert verify_output(context.output_root / "out.dcm", source, context) == []


def test_dicomdir_mirror_keeps_records_with_mapped_uids(tmp_path):
    source = Path(get_testdata_file("DICOMDIR"))
    context = make_context(tmp_path)
    original = pydicom.dcmread(source)
    out = roundtrip(context, source)
    records, before = out.DirectoryRecordSequence, original.DirectoryRecordSequence
    assert len(records) == len(before)
    new_at = {r.seq_item_tell: i for i, r in enumerate(records)}
    old_at = {r.seq_item_tell: i for i, r in enumerate(before)}
    for new, old in zip(records, before, strict=True):
        for tag in (0x00041400, 0x00041420):
            assert new_at.get(new[tag].value) == old_at.get(old[tag].value)
        if "ReferencedSOPInstanceUIDInFile" in old:
            assert new.ReferencedSOPInstanceUIDInFile == context.pseudonyms.uid(old.ReferencedSOPInstanceUIDInFile)
        if old.DirectoryRecordType == "PATIENT":
            assert new.PatientID == context.patient_pseudonym(old.PatientID)
    assert new_at[out.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity] == 0


def test_dicomdir_is_left_out_under_pseudonymous_naming(tmp_path):
    context = make_context(tmp_path, '[output]\nnaming = "pseudonymous"\n')
    asset = clean(context, Path(get_testdata_file("DICOMDIR")))
    assert write(context, asset) is None
    assert [c.action for c in asset.changes] == ["drop"] and "dropped" in asset.flags


def test_pseudonymous_names_come_from_mapped_values(tmp_path):
    context = make_context(tmp_path, '[output]\nnaming = "pseudonymous"\n')
    asset = clean(context, base_dataset())
    name = context.pm.hook.medscrub_output_name(asset=asset, context=context)
    uid = context.pseudonyms.uid
    assert name == (f"{context.patient_pseudonym('MRN12345')}/{uid('1.2.3.4.5.6.7.1')}/"
                    f"{uid('1.2.3.4.5.6.7.2')}/{uid('1.2.3.4.5.6.7.100')}.dcm")


def test_a_batch_of_real_files_passes_the_leak_check(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "test-SR.dcm", "US1_J2KR.dcm"):
        shutil.copy(get_testdata_file(name), tmp_path / "in" / name)
    summary = run_batch(RunConfig(None, SECRET, tmp_path / "in", tmp_path / "out"))
    assert [r.status for r in summary.results] == ["done"] * 6, [r.reason for r in summary.results]


# -- the verifier ----------------------------------------------------------------


def test_verifier_finds_a_value_put_back(tmp_path):
    context = make_context(tmp_path)
    source = save(base_dataset(OperatorsName="Nurse^Ann"), context.input_root)
    asset = clean(context, source)
    out_path = write(context, asset)
    assert verify_output(out_path, source, context) == []
    assert check_dataset(asset.data, asset.identifiers) == []
    leaked = pydicom.dcmread(out_path)
    leaked.ImageComments = "seen by nurse ann"
    leaked.add_new(0x00081155, "UI", "1.2.3.4.5.6.7.100")  # an unmapped instance UID
    leaked.save_as(out_path)
    kinds = {f.kind for f in verify_output(out_path, source, context)}
    assert {"name", "uid not remapped"} <= kinds
    findings = check_dataset(leaked, asset.identifiers)
    assert findings and all("Ann" not in f.hint for f in findings)


# -- conformance -----------------------------------------------------------------


def _dciodvfy_errors(path: Path) -> set[str]:
    result = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, timeout=60)
    return {line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) is not installed")
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "US1_UNCR.dcm",
                                  "eCT_Supplemental.dcm", "rtstruct.dcm"])
def test_no_new_dciodvfy_errors(tmp_path, name):
    source = Path(get_testdata_file(name))
    context = make_context(tmp_path)
    out_path = write(context, clean(context, source))
    assert _dciodvfy_errors(out_path) <= _dciodvfy_errors(source)
