"""The twix plugin end to end: planted PHI gone, k-space untouched, offsets valid."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import struct
import warnings

import numpy as np
import pytest

from medscrub import BadInput
from medscrub.context import RunConfig, RunContext
from medscrub.verify import verify_tree
from medscrub_twix import synthetic
from medscrub_twix.layout import read_layout, sniff

from .conftest import SECRET

twixtools = pytest.importorskip("twixtools")


def _twixtools(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return twixtools.read_twix(str(path), verbose=False, parse_geometry=False, parse_pmu=False)


def assert_same_kspace(before, after):
    a, b = _twixtools(before), _twixtools(after)
    assert len(a) == len(b)
    for sa, sb in zip(a, b, strict=True):
        assert len(sa["mdb"]) == len(sb["mdb"]) > 0
        for ma, mb in zip(sa["mdb"], sb["mdb"], strict=True):
            assert bytes(ma.mdh) == bytes(mb.mdh)
            if not ma.is_flag_set("SYNCDATA"):
                assert np.array_equal(ma.data, mb.data)


def assert_same_kspace_vb(before, after):
    # twixtools guesses VD for this file, so compare the readouts directly.
    a, b = before.read_bytes(), after.read_bytes()
    start = struct.unpack_from("<I", a, 0)[0]
    assert a[start:] == b[start:]


def assert_same_mapvbvd(before, after):
    mapvbvd = pytest.importorskip("mapvbvd")

    def image(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = mapvbvd.mapVBVD(str(path), quiet=True)
        obj = obj[-1] if isinstance(obj, list) else obj
        obj.image.flagRemoveOS = False
        return obj.image[""]

    assert np.array_equal(image(before), image(after))


def assert_no_planted(data: bytes, values):
    left = [v for v in values if v.encode("latin-1") in data]
    assert not left, f"planted values left in the output: {left}"


def structure(path):
    layout = read_layout(path)
    return [(m.offset, m.header_length, [(b.name, b.start, b.length) for b in m.buffers])
            for m in layout.measurements]


# -- detection ---------------------------------------------------------------


def test_detects_vd_and_vb(vd, vb, tmp_path):
    assert sniff(vd) == "VD"
    assert sniff(vb) == "VB"
    other = tmp_path / "other.dat"
    other.write_bytes(b"\x00" * 20000)
    assert sniff(other) is None


def test_short_vb_header_is_not_taken_for_vd(inputs, scrub, phi):
    # A VB header under 10000 bytes fools the first-integer guess of the readers.
    short = synthetic.write(inputs / "short_vb.dat", synthetic.Twix(version="VB", compact=True))
    first, second = struct.unpack_from("<II", short.read_bytes(), 0)
    assert first < 10000 and second <= 64
    assert read_layout(short).version == "VB"
    summary, out = scrub(inputs)
    assert summary.results[0].status == "done", summary.results[0].reason
    assert_no_planted((out / short.name).read_bytes(), [phi.name, phi.patient_id, phi.institution, phi.serial])
    assert_same_kspace_vb(short, out / short.name)


# -- scrubbing ----------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["vd", "vb"])
def test_planted_phi_is_gone_and_kspace_is_identical(request, fixture, inputs, scrub, phi):
    source = request.getfixturevalue(fixture)
    summary, out = scrub(inputs)
    assert [r.status for r in summary.results] == ["done"], summary.results[0].reason
    result = out / source.name
    data = result.read_bytes()
    assert_no_planted(data, phi.planted())
    assert len(data) == source.stat().st_size
    assert structure(result) == structure(source)  # every length and offset as it was
    assert_same_kspace(source, result)
    assert_same_mapvbvd(source, result)
    # The file header and the stale padding held the name too.
    assert phi.name.encode() not in data and phi.patient_id.encode() not in data


def test_every_measurement_of_a_multiraid_file_is_scrubbed(vd, inputs, scrub, phi):
    summary, out = scrub(inputs)
    layout = read_layout(out / vd.name)
    assert len(layout.measurements) == 2  # the adjustment scan too
    for meas in layout.measurements:
        with open(out / vd.name, "rb") as f:
            f.seek(meas.offset)
            header = f.read(meas.header_length)
        assert_no_planted(header, phi.planted())
        assert b"ANONYMISED" in header


def test_same_pseudonym_and_uids_in_every_buffer(vd, inputs, scrub):
    summary, out = scrub(inputs)
    scans = _twixtools(out / vd.name)
    hdr = scans[-1]["hdr"]
    names = {hdr["Config"]["tPatientName"], hdr["Dicom"]["tPatientName"], hdr["Meas"]["tPatientName"]}
    assert len(names) == 1 and next(iter(names)).startswith("P")
    frames = {hdr[b]["FrameOfReference"] for b in ("Config", "Dicom", "Meas", "Spice")}
    assert len(frames) == 1
    serial = hdr["Dicom"]["DeviceSerialNumber"]
    assert f".{int(serial)}." in next(iter(frames))  # the new serial inside the UID as well
    assert scans[0]["hdr"]["Config"]["PatientID"] == hdr["Config"]["PatientID"]


def test_same_secret_same_output(vd, inputs, scrub):
    _, one = scrub(inputs, name="one")
    _, two = scrub(inputs, name="two")
    assert (one / vd.name).read_bytes() == (two / vd.name).read_bytes()


def test_real_scanner_files(real, scrub):
    summary, out = scrub(real)
    assert {r.id: r.status for r in summary.results} == {"epi.dat": "done", "gre.dat": "done"}
    assert all("truncated" not in r.flags for r in summary.results)  # epi.dat is complete at 1 MiB
    for name in ("epi.dat", "gre.dat"):
        before, after = real / name, out / name
        data = after.read_bytes()
        assert len(data) == before.stat().st_size
        assert_no_planted(data, ["45385", "20210622", "20090304", "DZNE", "Bonn", "Sigmund", "Venusberg",
                                 "66327770", "66327775", "66327779", "66333094"])
        assert structure(after) == structure(before)
        assert_same_kspace(before, after)
        assert_same_mapvbvd(before, after)


def test_date_shift_moves_every_date_by_the_patient_offset(vd, inputs, scrub, phi):
    summary, out = scrub(inputs, '[dates]\npolicy = "shift"\n')
    assert summary.results[0].status == "done", summary.results[0].reason
    context = RunContext(RunConfig(None, SECRET, inputs, out))
    days = context.pseudonyms.date_offset(phi.patient_id)
    shifted = dt.date(1971, 4, 23) + dt.timedelta(days=days)
    hdr = _twixtools(out / vd.name)[-1]["hdr"]
    assert f'PatientBirthDay">  {{ "{shifted.strftime("%Y%m%d")}"' in hdr["Config_raw"]
    exam = (dt.date(2023, 9, 15) + dt.timedelta(days=days)).strftime("%Y%m%d")
    assert exam in hdr["Config"]["FrameOfReference"]
    assert f"_{exam}_{phi.exam_time}_" in hdr["Meas_raw"]


def test_site_rules_and_options(vd, inputs, scrub, phi):
    recipe = (
        '[twix]\nprotocol_name = "remove"\nreplacement = "REDACTED"\n'
        '[[rules]]\nmatch = "InstitutionName"\naction = "keep"\nformat = "twix"\n'
        '[[rules]]\nmatch = "tPatientName"\naction = "replace"\nvalue = "ANON"\nformat = "twix"\n'
    )
    summary, out = scrub(inputs, recipe)
    assert summary.results[0].status == "done", summary.results[0].reason
    data = (out / vd.name).read_bytes()
    hdr = _twixtools(out / vd.name)[-1]["hdr"]
    assert hdr["Dicom"]["InstitutionName"] == phi.institution_other  # kept by the site rule
    assert hdr["Config"]["InstitutionName"] == phi.institution
    assert hdr["Config"]["InstitutionAddress"].startswith("REDACTED")
    assert hdr["Config"]["tPatientName"].strip() == "ANON"
    assert b"t1_fl3d_DOE" not in data and b"AdjCoilSens" not in data  # protocol names, file header too


def test_bad_site_rule_stops_the_run(vd, inputs, scrub):
    from medscrub import MedscrubError

    with pytest.raises(MedscrubError, match="twix rule"):
        scrub(inputs, '[[rules]]\nmatch = "Nowhere:tPatientName"\naction = "remove"\nformat = "twix"\n')


# -- damaged input --------------------------------------------------------------


def test_truncated_data_is_scrubbed_as_far_as_it_goes(vd, inputs, scrub, phi, tmp_path):
    whole = vd.read_bytes()
    vd.write_bytes(whole[: len(whole) - 1500])  # the last readouts are cut
    summary, out = scrub(inputs)
    result = summary.results[0]
    assert result.status == "done", result.reason
    assert "truncated" in result.flags and "cut off" in result.flags["truncated"]
    data = (out / vd.name).read_bytes()
    assert len(data) == len(whole) - 1500
    assert_no_planted(data, phi.planted())


def test_truncated_vb_is_flagged(vb, inputs, scrub):
    vb.write_bytes(vb.read_bytes()[:-300])
    summary, _ = scrub(inputs)
    assert summary.results[0].status == "done"
    assert "end-of-acquisition" in summary.results[0].flags["truncated"]


def test_bad_files_fail_clearly_and_the_batch_goes_on(vd, inputs, scrub):
    cut_header = inputs / "cut_header.dat"
    cut_header.write_bytes(vd.read_bytes()[:12000])  # inside the first measurement header
    past_end = inputs / "past_end.dat"
    raw = bytearray(vd.read_bytes())
    struct.pack_into("<I", raw, 10240, 10**8)  # header length past the end of the file
    past_end.write_bytes(bytes(raw))
    summary, out = scrub(inputs)
    by_id = {r.id: r for r in summary.results}
    assert by_id["meas_vd.dat"].status == "done"
    for name in ("cut_header.dat", "past_end.dat"):
        assert by_id[name].status == "failed"
        assert "past the end of the file" in by_id[name].reason
        assert not (out / name).exists()


def test_bad_structure_is_badinput(vd, tmp_path):
    raw = bytearray(vd.read_bytes())
    at = raw.index(b"Dicom\0")
    struct.pack_into("<I", raw, at + 6, 10**7)  # a buffer longer than its header
    bad = tmp_path / "bad.dat"
    bad.write_bytes(bytes(raw))
    with pytest.raises(BadInput, match="runs past its header"):
        read_layout(bad)


# -- re-identification map and verification ----------------------------------------


def test_reidentification_map_only_when_asked(vd, inputs, scrub, phi, tmp_path):
    scrub(inputs, name="plain")
    assert not list(tmp_path.glob("*.sqlite"))
    map_path = tmp_path / "map.sqlite"
    summary, _ = scrub(inputs, f'[output]\nreidentification_map = "{map_path}"\n', name="mapped")
    assert summary.results[0].status == "done", summary.results[0].reason
    rows = sqlite3.connect(map_path).execute("SELECT kind, original, pseudonym FROM map").fetchall()
    originals = {original for _, original, _ in rows}
    assert phi.patient_id in originals and phi.serial in originals


def test_verify_finds_nothing_in_the_output_and_everything_in_the_input(vd, inputs, scrub, tmp_path):
    summary, out = scrub(inputs)
    findings, checked = verify_tree(out, inputs)
    assert checked == 1 and findings == []
    shutil.copyfile(vd, out / vd.name)  # an unscrubbed file in place of the output
    findings, _ = verify_tree(out, inputs)
    kinds = {f.kind for f in findings}
    assert {"name", "id", "institution", "device"} <= kinds
    assert all("Doe" not in f.line() for f in findings)  # hints are masked
