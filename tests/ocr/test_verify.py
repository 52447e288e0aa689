"""``medscrub verify`` reads the text in the pixels: burned-in PHI that the
header checks cannot see fails the check, and erased text passes it."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import numpy as np
import pytest
from dicom_builders import finish
from PIL import Image, PngImagePlugin
from pydicom import Dataset, dcmread
from typer.testing import CliRunner

from medscrub.cli import app
from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.pseudonyms import Secret
from medscrub_ocr.engines import EngineUnavailable, PaddleReader
from medscrub_ocr.synthetic import banner
from medscrub_ocr.verify import Reading, find, findings, fold, needles

SECRET = Secret(b"ocr-verify-secret-0123456789", "test")
ENV = {"MEDSCRUB_LOAD_PLUGINS": "dicom,ocr"}
NAME, PATIENT_ID, BIRTH = "Doemeister^Johanna", "KX4471932", "19610304"
# what the device wrote on the image: the patient, the birth date as people
# write it, the study date with a time, and a line that names no one
LINES = ["DOEMEISTER^JOHANNA", f"ID {PATIENT_ID}", "DOB 04/03/1961", "17.05.2023 10:11", "GEN ABD C5-1"]


def ultrasound(path: Path, frames: list[list[str]] | None = None) -> None:
    """An RGB ultrasound image that shows its patient's name, ID and dates
    (or a cine loop whose frames show these lines)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"  # Ultrasound Image Storage
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1143.1", \
        "1.2.826.0.1.3680043.2.1143.2", "1.2.826.0.1.3680043.2.1143.3"
    ds.Modality = "US"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, BIRTH
    ds.StudyDate, ds.StudyTime = "20230517", "101100"
    ds.Manufacturer = "Medscrub Test Devices"
    ds.BurnedInAnnotation = "YES"
    finish(ds)
    pixels = banner(LINES) if frames is None else np.stack([banner(lines) for lines in frames])
    ds.set_pixel_data(pixels, "RGB", 8, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def ct_slice(path: Path) -> None:
    """A CT slice: not flagged, so not read with OCR by default."""
    from dicom_builders import ct_dataset

    ds = ct_dataset(PatientName=NAME, PatientID=PATIENT_ID)
    ds.set_pixel_data(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64), "MONOCHROME2", 12,
                      generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def _run(src: Path, out: Path, recipe: str = "", cleaners: tuple[str, ...] = ()):
    path = out.parent / f"{out.name}.toml"
    # burned-in text is flagged, not quarantined: the output keeps what its pixels show
    path.write_text('[dicom]\nburned_in = "flag"\n' + recipe)
    return run_batch(RunConfig(path, SECRET, src, out, cleaners=cleaners, plugins=("dicom", "ocr")), workers=1)


def _verify(out: Path, src: Path, *args: str):
    return CliRunner().invoke(app, ["verify", str(out), "--against", str(src), *args], env=ENV)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, detector):
    src = tmp_path_factory.mktemp("in")
    ultrasound(src / "us.dcm")
    ultrasound(src / "cine.dcm", [[], [], [f"ID {PATIENT_ID}"]])  # the ID shows in the third frame only
    ct_slice(src / "ct.dcm")
    return src


@pytest.fixture(scope="module")
def kept(inputs, tmp_path_factory):
    """Run without erase-text: the output still shows the text."""
    out = tmp_path_factory.mktemp("kept") / "out"
    summary = _run(inputs, out)
    assert summary.exit_code == 0, [r.reason for r in summary.results]
    assert {r.flags.get("burned_in_text") for r in summary.results} == {"yes", None}
    assert "pixels" not in {a for r in summary.results for a in r.actions}
    return out


@pytest.fixture(scope="module")
def erased(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("erased") / "out"
    summary = _run(inputs, out, cleaners=("erase-text",))
    assert summary.exit_code == 0, [r.reason for r in summary.results]
    return out


def test_burned_in_phi_fails_verify_naming_file_and_frame_masked(inputs, kept):
    result = _verify(kept, inputs)  # OCR is on by default, for flagged outputs
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stdout.splitlines() if "pixels (OCR)" in line]
    assert lines, result.output
    (cine,) = [line for line in lines if line.startswith("cine.dcm: ")]
    match = re.fullmatch(r"cine\.dcm: id in pixels \(OCR\), frame 3, box (\d+),(\d+),(\d+),(\d+) \(KX\*\*\* \(9 chars\)\)",
                         cine)
    assert match, cine
    x0, y0, x1, y1 = map(int, match.groups())
    assert x0 <= 6 < 100 < x1 and y0 <= 8 < 20 < y1 < 40  # the line drawn at (6, 6), 16 pixels high
    lines = [line for line in lines if not line.startswith("cine.dcm: ")]
    assert all(line.startswith("us.dcm: ") and "frame 1, box " in line for line in lines)
    kinds = {line.split(": ", 1)[1].split(" in ")[0] for line in lines}
    assert {"name", "id", "date"} <= kinds, lines
    assert "19*** (8 chars)" in result.stdout and "20*** (8 chars)" in result.stdout  # birth and study dates
    assert "Do*** (10 chars)" in result.stdout and "KX*** (9 chars)" in result.stdout
    for value in ("Doemeister", "DOEMEISTER", "Johanna", "JOHANNA", PATIENT_ID, "1961", "04/03", "2023"):
        assert value not in result.output
    assert "OCR" not in result.stderr  # not asked for: the summary line is as without OCR
    flagged = _verify(kept, inputs, "--ocr", "flagged")
    assert flagged.stdout == result.stdout and "2 read with OCR" in flagged.stderr  # the CT slice is not flagged


def test_the_header_checks_alone_pass_it(inputs, kept):
    """Without OCR nothing sees the text: the pixels are the only leak."""
    result = _verify(kept, inputs, "--ocr", "off")
    assert result.exit_code == 0, result.output
    assert "read with OCR" not in result.stderr and "pixels" not in result.stdout


def test_erased_text_passes_verify(inputs, erased):
    result = _verify(erased, inputs, "--ocr", "flagged")
    assert result.exit_code == 0, result.output
    assert "pixels" not in result.stdout
    # it was read, not skipped: erase-text set BurnedInAnnotation NO, and the input said YES
    assert dcmread(erased / "us.dcm").BurnedInAnnotation == "NO"
    assert "2 read with OCR" in result.stderr


def test_any_text_reports_words_that_name_no_one(inputs, kept, erased):
    plain = _verify(kept, inputs)
    assert " text in pixels" not in plain.stdout
    result = _verify(kept, inputs, "--ocr-any-text")
    assert result.exit_code == 1
    text = [line for line in result.stdout.splitlines() if ": text in pixels (OCR)" in line]
    assert text and "GE*** (12 chars)" in result.stdout, result.stdout
    assert _verify(erased, inputs, "--ocr-any-text").exit_code == 0


def test_ocr_all_reads_every_output_with_pixels(inputs, erased):
    result = _verify(erased, inputs, "--ocr", "all")
    assert result.exit_code == 0, result.output
    assert "3 read with OCR" in result.stderr


def test_bad_ocr_switch_is_a_usage_error(inputs, kept):
    result = _verify(kept, inputs, "--ocr", "some")
    assert result.exit_code == 2 and "--ocr must be flagged, all or off" in result.stderr


def test_deep_verify_withholds_an_output_that_shows_phi(inputs, tmp_path):
    summary = _run(inputs, tmp_path / "out", "[run]\ndeep_verify = true\n")
    results = {r.id: r for r in summary.results}
    assert results["ct.dcm"].status == "done"
    for name in ("us.dcm", "cine.dcm"):
        failed = results[name]
        assert failed.status == "failed" and "pixels (OCR)" in failed.reason, failed.reason
        assert "Doemeister" not in failed.reason and PATIENT_ID not in failed.reason
        assert not (tmp_path / "out" / name).exists()


def test_plain_image_text_that_its_metadata_named(tmp_path, detector):
    src = tmp_path / "in"
    src.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Johanna Doemeister")
    Image.fromarray(banner(["Johanna Doemeister", "scan 3"])).save(src / "photo.png", pnginfo=info)
    out = tmp_path / "out"
    assert _run(src, out).exit_code == 0
    result = _verify(out, src)
    assert result.exit_code == 1 and "photo.png: label in pixels (OCR), frame 1" in result.stdout, result.output
    assert "Doemeister" not in result.output
    cleaned = tmp_path / "cleaned"
    assert _run(src, cleaned, cleaners=("erase-text",)).exit_code == 0
    assert _verify(cleaned, src).exit_code == 0


def test_reader_ships_inside_a_package_and_reads_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the text reader tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    try:
        reader = PaddleReader()
    except EngineUnavailable as e:
        pytest.skip(str(e))
    assert "site-packages" in str(reader.model) or "dist-packages" in str(reader.model)
    line = banner(["KX4471932"], width=200, height=40, size=20)[2:32, 2:150]
    text, confidence = reader.read(line)
    assert text == "KX4471932" and confidence > 0.9


# -- matching, without an engine ---------------------------------------------------


def test_needles_cover_names_ids_and_written_dates():
    wanted = {(n.kind, n.folded) for n in needles({
        "name": {"Doemeister^Johanna^^Mrs"}, "id": {"KX4471932", "12"}, "date": {"19610304"}})}
    assert ("name", fold("DOEMEISTER")[0]) in wanted and ("name", fold("JOHANNA")[0]) in wanted
    assert not any(folded == fold("MRS")[0] for _, folded in wanted)  # a prefix names no one
    assert ("id", fold("KX4471932")[0]) in wanted and ("id", "12") not in wanted  # too short: chance
    for written in ("04/03/1961", "1961-03-04", "03/04/1961", "4 Mar 1961", "04.03.1961"):
        assert ("date", fold(written)[0]) in wanted, written


@pytest.mark.parametrize(("text", "needle", "found"), [
    ("DOEMEISTER^JOHANNA", "Johanna", True),
    ("Doemeister, Johanna", "DOEMEISTER", True),
    ("D0EMEISTER JOHANNA", "Doemeister", True),  # O read as 0
    ("DOEMEISTFR JOHANNA", "Doemeister", True),  # one character wrong in a long name
    ("ANNOTATION", "Ann", False),  # not a word of its own
    ("JOHANNSEN", "Johann", False),
    ("DOB1961-03-04", "1961-03-04", True),  # letters turning to digits are an edge
    ("ID 4471932", "KX4471932", False),
    ("12345678901", "4567890", False),  # inside a longer number: chance
    ("17.05202310:11", "17.05.2023", True),  # a full date: OCR dropped the space before the time
    ("DOB 040361123", "04/03/61", False),  # a short one: chance
])
def test_find_matches_whole_words_and_forgives_ocr(text, needle, found):
    folded, edges = fold(text)
    assert find(fold(needle)[0], folded, edges, sum(c.isdigit() for c in needle) >= 8) is found


def test_findings_group_frames_and_mask_values():
    wanted = needles({"name": {"Doemeister^Johanna"}})
    readings = [Reading(i, (0, 1, 200, 29), "DOEMEISTER JOHANNA", 0.99) for i in range(3)]
    found = findings(readings, wanted, any_text=False, label="a.dcm")
    assert sorted(f.hint for f in found) == ["Do*** (10 chars)", "Jo*** (7 chars)"]
    assert all(f.place == "pixels (OCR), frame 1, box 0,1,200,29, and 2 more frame(s)" for f in found)
