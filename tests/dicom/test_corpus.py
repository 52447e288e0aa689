"""Issue 3: the whole pydicom corpus, with PHI planted everywhere it hides,
goes through ``medscrub run`` and nothing identifying comes out.

Every DICOM object that pydicom and pydicom-data ship (about 260: 13
character sets, JPEG, JPEG 2000, JPEG-LS, RLE, deflated, big endian, implicit
VR, enhanced multi-frame, RT, SR, SEG, DICOMDIRs, fragments, deliberately
broken files) gets a unique marker planted at the top level, at depths 1 to 3
of new and existing sequences, in private blocks (safe-listed and not), the
file meta and DICOMDIR records.  One CLI run with two workers processes them
all; the module's tests then look at every output.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread

pytest.importorskip("medscrub_dicom", reason="the DICOM plugin (medscrub-dicom) is not installed")

from typer.testing import CliRunner  # noqa: E402

from medscrub.cli import app  # noqa: E402

SECRET = b"s" * 32
DIRTESTS = "pydicom/test_files/dicomdirtests/"

# Inputs that cannot be de-identified as they are, with the status and the
# reason (a regular expression) the run must give.  The planted run copies
# them unchanged: planting would repair or mask what makes them bad.
KNOWN_BAD: dict[str, tuple[str, str]] = {
    # starts one byte off: pydicom reads a single garbage element, nothing to claim
    "pydicom/test_files/no_meta.dcm": ("unsupported", r"no installed plugin reads"),
    # fragments without a SOP class: no valid Part 10 file can be made of them
    "pydicom/test_files/empty_charset_LEI.dcm": ("failed", r"no SOP Class UID"),
    "pydicom/test_files/meta_missing_tsyntax.dcm": ("failed", r"no SOP Class UID"),
    "pydicom/test_files/nested_priv_SQ.dcm": ("failed", r"no SOP Class UID"),
    # the file ends inside the encapsulated pixel data
    "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm": ("failed", r"no DICOM data set|truncat|end of file"),
}

# As shipped, the dicomdirtests tree is named by the patient's ID
# ("77654033/CT2/17106") and its DICOMDIRs hold that ID in their file
# references: with mirrored output names the leak check must withhold them.
# (The planted run replaces the ID in the files, so there they pass.)
_ID_IN_PATH = ("failed", r"^leak check: id in (file name|bytes)")
WITHHELD_AS_SHIPPED: dict[str, tuple[str, str]] = {
    **{f"{DIRTESTS}77654033/{p}": _ID_IN_PATH for p in (
        "CR1/6154", "CR2/6247", "CR3/6278", "CT2/17106", "CT2/17136", "CT2/17166", "CT2/17196")},
    **{f"{DIRTESTS}{name}": _ID_IN_PATH for name in (
        "DICOMDIR", "DICOMDIR-bigEnd", "DICOMDIR-implicit", "DICOMDIR-nooffset", "DICOMDIR-nopatient",
        "DICOMDIR-reordered")},
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".medscrub" not in p.relative_to(root).parts
    }


def cli(*args: str) -> tuple[int, str]:
    # only the DICOM plugin: what other installed plugins do is not tested here
    result = CliRunner().invoke(app, list(args), env={"MEDSCRUB_LOAD_PLUGINS": "dicom"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


class CorpusRun:
    """One run of the whole corpus: inputs, their identifying values, outputs."""

    def __init__(self, kind: str, base: Path, marker) -> None:
        self.kind = kind
        self.root = base / "in"
        self.output = base / "out"
        self.marker = marker  # None for the corpus as shipped
        self.originals: dict[str, object] = {}  # item id -> Originals of its input
        self.hashes: dict[str, str] = {}
        self.records: dict[str, dict] = {}
        self.exit_code = -1
        self.cli_output = ""
        self.expected = dict(KNOWN_BAD) if marker else {**KNOWN_BAD, **WITHHELD_AS_SHIPPED}

    def done(self) -> list[str]:
        return sorted(i for i, r in self.records.items() if r["status"] == "done")

    def outputs(self, item: str) -> list[Path]:
        return [self.output / o for o in self.records[item]["output"]]


def prepare(kind: str, corpus, marker, helpers, base: Path) -> CorpusRun:
    run = CorpusRun(kind, base, marker if kind == "planted" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in corpus:
            target = run.root / item.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if run.marker is None or item.name in KNOWN_BAD:
                shutil.copyfile(item.path, target)
            else:
                helpers.write_planted(item.path, target, run.marker)
            # what the run reads is what must not come out
            run.originals[item.name] = helpers.originals_of(helpers.read_any(target))
    run.hashes = {p.relative_to(run.root).as_posix(): sha256(p) for p in run.root.rglob("*") if p.is_file()}
    key = base / "secret.key"
    key.write_bytes(SECRET)
    run.exit_code, run.cli_output = cli(
        "run", str(run.root), str(run.output), "--workers", "2", "--secret-file", str(key), "--quiet"
    )
    run.records = helpers.read_manifest(run.output)
    return run


@pytest.fixture(scope="module", params=["shipped", "planted"])
def corpus_run(request, dicom_corpus, phi_marker, dicom_helpers, tmp_path_factory) -> CorpusRun:
    """The corpus as shipped (its own names, IDs and UIDs, 13 character sets)
    and the corpus with the marker planted everywhere, each in one CLI run."""
    base = tmp_path_factory.mktemp(request.param)
    return prepare(request.param, dicom_corpus, phi_marker, dicom_helpers, base)


# -- the corpus itself ---------------------------------------------------------


def test_corpus_covers_what_the_issue_promises(dicom_corpus):
    """A shrunken corpus would make every other test here weaker without failing."""
    assert len(dicom_corpus) >= 250
    charsets, syntaxes = set(), set()
    for item in dicom_corpus:
        ds = dcmread(item.path, stop_before_pixels=True, force=True)
        charset = ds.get("SpecificCharacterSet") or []
        charsets |= {c.strip() for c in ([charset] if isinstance(charset, str) else charset)}
        meta = getattr(ds, "file_meta", None)
        syntaxes.add(str(meta.get("TransferSyntaxUID", "")) if meta is not None else "")
    assert len(charsets - {""}) >= 11, sorted(charsets)
    for uid in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.50",
                "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.5"):
        assert uid in syntaxes
    assert sum(1 for i in dicom_corpus if i.path.name.startswith("DICOMDIR")) >= 6
    assert set(KNOWN_BAD) | set(WITHHELD_AS_SHIPPED) <= {i.name for i in dicom_corpus}


def test_the_scanner_finds_what_is_there(corpus_run, dicom_helpers):
    """The leak tests are only as good as the scanner: on the inputs it must
    find the planted marker in every planted file, and in the files as shipped
    the patient names and IDs wherever they are set."""
    missed = []
    for item, originals in sorted(corpus_run.originals.items()):
        if item in KNOWN_BAD:
            continue
        found = {leak.what for leak in dicom_helpers.scan_for_phi(corpus_run.root / item, originals, corpus_run.marker)}
        wanted = "planted marker (parsed)" if corpus_run.marker else "original identifying value (parsed)"
        if (corpus_run.marker or originals.text) and wanted not in found:
            missed.append(item)
    assert not missed


def test_inputs_are_not_modified(corpus_run):
    root = corpus_run.root
    assert {p.relative_to(root).as_posix(): sha256(p) for p in root.rglob("*") if p.is_file()} == corpus_run.hashes


def test_every_item_is_recorded_and_only_known_bad_files_are_not_done(corpus_run):
    assert sorted(corpus_run.records) == sorted(corpus_run.originals)
    not_done = {i: r for i, r in corpus_run.records.items() if r["status"] != "done"}
    assert sorted(not_done) == sorted(corpus_run.expected), "\n".join(
        f"{i}: {r['status']}: {r['reason']}" for i, r in sorted(not_done.items()) if i not in corpus_run.expected
    ) or f"done, expected not: {sorted(set(corpus_run.expected) - set(not_done))}"
    for item, record in not_done.items():
        status, pattern = corpus_run.expected[item]
        reason = record["reason"] or ""
        assert record["status"] == status, (item, record["status"], reason)
        assert reason and "\n" not in reason and "internal error" not in reason, (item, reason)
        assert re.search(pattern, reason, re.I), (item, reason)
        assert record["output"] == []
    assert corpus_run.exit_code == (1 if not_done else 0), corpus_run.cli_output


def test_nothing_is_written_for_items_that_are_not_done(corpus_run):
    out = corpus_run.output
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".medscrub" not in p.relative_to(out).parts}
    assert written == {o for r in corpus_run.records.values() if r["status"] == "done" for o in r["output"]}


# -- no PHI survives -------------------------------------------------------------


def test_no_identifying_value_survives_in_any_output(corpus_run, dicom_helpers):
    """Raw bytes (utf-8, latin-1, the input's and the output's character set;
    inflated when deflated), parsed values at any depth (file meta included)
    and output paths."""
    from pydicom.charset import convert_encodings

    leaks = []
    for item in corpus_run.done():
        originals = corpus_run.originals[item]
        for output in corpus_run.outputs(item):
            charset = dcmread(output, stop_before_pixels=True, force=True).get("SpecificCharacterSet")
            encodings = convert_encodings(list(charset) if isinstance(charset, list) else charset)
            leaks += map(str, dicom_helpers.scan_for_phi(output, originals, corpus_run.marker, label=item, encodings=encodings))
            relative = output.relative_to(corpus_run.output).as_posix().lower()
            leaks += [f"{item}: original value {t[:3]}*** in the output path" for t in originals.text
                      if len(t) >= 5 and t.lower() in relative]
    assert not leaks, "\n".join(leaks[:40]) + f"\n({len(leaks)} in all)"


def read_warnings(path: Path, force: bool = False):
    """The dataset and the warnings pydicom gives reading all of it (file names dropped)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = dcmread(path, force=force)
        for _ in ds.iterall():
            pass
    return ds, {re.sub(r" in file \S+", "", str(w.message)) for w in caught}


def test_outputs_reread_and_say_patient_identity_removed(corpus_run):
    """Every output is a Part 10 file that pydicom reads with no warning its
    input did not already give, and says PatientIdentityRemoved = YES (a
    DICOMDIR has no Patient module: it is exempt)."""
    problems = []
    for item in corpus_run.done():
        _, before = read_warnings(corpus_run.root / item, force=True)
        for output in corpus_run.outputs(item):
            try:
                ds, after = read_warnings(output)
            except Exception as e:
                problems.append(f"{item}: does not re-read: {type(e).__name__}: {e}")
                continue
            problems += [f"{item}: new warning on reading: {w}" for w in sorted(after - before)]
            directory = str(ds.file_meta.get("MediaStorageSOPClassUID", "")) == "1.2.840.10008.1.3.10"
            if not directory and ds.get("PatientIdentityRemoved") != "YES":
                problems.append(f"{item}: PatientIdentityRemoved = {ds.get('PatientIdentityRemoved')!r}")
    assert not problems, "\n".join(problems)


def test_pixel_data_is_unchanged(corpus_run, dicom_helpers):
    changed = []
    for item in corpus_run.done():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = dicom_helpers.read_any(corpus_run.root / item)
            output = dcmread(corpus_run.outputs(item)[0])
        for tag in dicom_helpers.PIXEL_TAGS:
            if (tag in source) != (tag in output):
                changed.append(f"{item}: {tag} {'dropped' if tag in source else 'added'}")
            elif tag in source and source[tag].value != output[tag].value:
                changed.append(f"{item}: {tag} differs")
    assert not changed, "\n".join(changed)


# -- medscrub verify -------------------------------------------------------------


def test_verify_passes_the_clean_output(corpus_run):
    code, output = cli("verify", str(corpus_run.output), "--against", str(corpus_run.root))
    assert code == 0, output


def test_verify_finds_a_leak_planted_into_a_copy_of_the_output(corpus_run, tmp_path):
    """Two outputs copied with their manifest lines, one given back the
    patient's name, one its original study UID: verify must name both."""
    import json

    name_item, uid_item = "pydicom/test_files/CT_small.dcm", "pydicom/test_files/MR_small.dcm"
    copy = tmp_path / "out-copy"
    (copy / ".medscrub").mkdir(parents=True)
    lines = [json.dumps(corpus_run.records[i]) for i in (name_item, uid_item)]
    (copy / ".medscrub" / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    outputs = {}
    for item in (name_item, uid_item):
        relative = corpus_run.records[item]["output"][0]
        outputs[item] = copy / relative
        outputs[item].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus_run.output / relative, outputs[item])
    code, output = cli("verify", str(copy), "--against", str(corpus_run.root))
    assert code == 0, output  # the copies are clean until the leaks go in
    source = dcmread(corpus_run.root / name_item)
    ds = dcmread(outputs[name_item])
    ds.ImageComments = f"for {source.PatientName}"
    ds.save_as(outputs[name_item])
    ds = dcmread(outputs[uid_item])
    ds.StudyInstanceUID = dcmread(corpus_run.root / uid_item).StudyInstanceUID
    ds.save_as(outputs[uid_item])
    code, output = cli("verify", str(copy), "--against", str(corpus_run.root))
    assert code == 1, output
    assert corpus_run.records[name_item]["output"][0] in output
    assert corpus_run.records[uid_item]["output"][0] in output
    assert str(source.PatientName) not in output  # findings mask the value


# -- a series across files -------------------------------------------------------


def all_values(ds, keyword: str) -> list[str]:
    return [str(e.value) for e in ds.iterall() if e.keyword == keyword]


def test_series_shares_mapped_uids_and_references_resolve(tmp_path, make_series, medscrub_run):
    inputs = make_series(tmp_path / "in", count=5)
    result = medscrub_run(tmp_path / "in", tmp_path / "out")
    assert result.exit_code == 0, result.records
    before = [dcmread(p) for p in inputs]
    after = [dcmread(tmp_path / "out" / p.relative_to(tmp_path / "in")) for p in inputs]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID"):
        values = {str(ds.get(keyword)) for ds in after}
        assert len(values) == 1, (keyword, values)
        assert values != {str(before[0].get(keyword))}, keyword
    sops = [str(ds.SOPInstanceUID) for ds in after]
    assert len(set(sops)) == len(sops)
    assert not set(sops) & {str(ds.SOPInstanceUID) for ds in before}
    for ds in after:
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    references = [uid for ds in after for uid in all_values(ds, "ReferencedSOPInstanceUID")]
    assert len(references) == 2 * (len(inputs) - 1)  # image and derivation source, each slice but the first
    assert set(references) <= set(sops)
    # each slice still points at the slice before it
    for n in range(1, len(after)):
        assert after[n].ReferencedImageSequence[0].ReferencedSOPInstanceUID == after[n - 1].SOPInstanceUID


def test_dicomdir_records_resolve_to_output_instances(tmp_path, make_series, medscrub_run, dicom_helpers):
    from pydicom.fileset import FileSet

    make_series(tmp_path / "in", count=4, dicomdir=True, patient="Dirname^Walter")
    result = medscrub_run(tmp_path / "in", tmp_path / "out")
    assert result.exit_code == 0, {i: r["reason"] for i, r in result.records.items() if r["status"] != "done"}
    assert result.records["DICOMDIR"]["status"] == "done"
    original = dcmread(tmp_path / "in" / "DICOMDIR")
    leaks = dicom_helpers.scan_for_phi(tmp_path / "out" / "DICOMDIR", dicom_helpers.originals_of(original))
    assert not leaks, [str(x) for x in leaks]
    fileset = FileSet(dcmread(tmp_path / "out" / "DICOMDIR"))
    instances = list(fileset)
    assert len(instances) == 4
    for instance in instances:
        target = dcmread(instance.path)
        assert instance.SOPInstanceUID == target.SOPInstanceUID
        assert instance.PatientID == target.PatientID
        assert instance.StudyInstanceUID == target.StudyInstanceUID
        assert instance.SeriesInstanceUID == target.SeriesInstanceUID


def test_same_secret_gives_identical_bytes_and_another_secret_other_uids(tmp_path, make_series, medscrub_run):
    make_series(tmp_path / "in", count=3)
    medscrub_run(tmp_path / "in", tmp_path / "one")
    medscrub_run(tmp_path / "in", tmp_path / "two", workers=1)
    medscrub_run(tmp_path / "in", tmp_path / "three", secret=b"t" * 32)
    one, two, three = (tree_bytes(tmp_path / n) for n in ("one", "two", "three"))
    assert len(one) == 3 and one == two
    for name in one:
        a, c = dcmread(tmp_path / "one" / name), dcmread(tmp_path / "three" / name)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            assert a.get(keyword) != c.get(keyword), keyword


# -- options that keep more must still not leak ------------------------------------


def test_retain_safe_private_never_writes_a_planted_name(tmp_path, phi_marker, dicom_helpers, medscrub_run):
    """With the safe private attributes kept, the patient's name written into a
    safe-listed private element must still not reach an output: it is cleaned,
    or the output is withheld by the leak check."""
    from pydicom.data import get_testdata_file

    inputs = tmp_path / "in"
    for name in ("CT_small.dcm", "MR_small.dcm"):
        ds = dicom_helpers.write_planted(Path(get_testdata_file(name)), inputs / name, phi_marker)
        ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x9E, "LO", str(ds.PatientName))
        ds.save_as(inputs / name, enforce_file_format=False)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[dicom]\nretain_safe_private = true\n")
    result = medscrub_run(inputs, tmp_path / "out", recipe=recipe)
    for item, record in result.records.items():
        for output in record["output"]:
            leaks = dicom_helpers.scan_for_phi(tmp_path / "out" / output, dicom_helpers.Originals(), phi_marker, label=item)
            assert not leaks, [str(x) for x in leaks]
    for record in result.records.values():
        assert record["status"] in ("done", "failed") and "internal error" not in (record["reason"] or ""), record


def test_the_leak_test_catches_a_run_that_keeps_phi(tmp_path, phi_marker, dicom_helpers, medscrub_run):
    """A negative control: with the leak check off and the institution and
    comments kept by recipe rules, the scanner must report what was kept."""
    from pydicom.data import get_testdata_file

    inputs = tmp_path / "in"
    dicom_helpers.write_planted(Path(get_testdata_file("CT_small.dcm")), inputs / "ct.dcm", phi_marker)
    recipe = tmp_path / "keep.toml"
    recipe.write_text(
        '[run]\nverify = false\n\n[[rules]]\nmatch = "InstitutionName"\naction = "keep"\n\n'
        '[[rules]]\nmatch = "PatientComments"\naction = "keep"\n'
    )
    result = medscrub_run(inputs, tmp_path / "out", recipe=recipe)
    assert result.records["ct.dcm"]["status"] == "done"
    originals = dicom_helpers.originals_of(dcmread(inputs / "ct.dcm"))
    leaks = dicom_helpers.scan_for_phi(tmp_path / "out" / "ct.dcm", originals, phi_marker)
    places = {leak.where for leak in leaks}
    assert "(0008,0080)" in places and "(0010,4000)" in places, [str(x) for x in leaks]


# -- bugs found by the corpus, shown on their own ------------------------------------


def test_verify_does_not_report_a_name_part_that_is_a_defined_term(tmp_path, medscrub_run):
    """A patient named "Perfusion^Anna" in a perfusion CT: ImageType keeps the
    defined term PERFUSION and a code its scheme designator TEST, neither of
    which identifies anyone.  ``medscrub verify`` must pass the clean output
    (it reported both, as in eCT_Supplemental.dcm and test-SR.dcm)."""
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    inputs = tmp_path / "in"
    inputs.mkdir()
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName = "Perfusion^Test"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "PERFUSION"]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T1", "TEST", "Region one"
    ds.AnatomicRegionSequence = Sequence([code])
    ds.save_as(inputs / "ct.dcm")
    result = medscrub_run(inputs, tmp_path / "out")
    assert result.records["ct.dcm"]["status"] == "done", result.records
    code, output = cli("verify", str(tmp_path / "out"), "--against", str(inputs))
    assert code == 0, output


def test_a_patient_id_typed_into_a_kept_technical_label_is_withheld(tmp_path, medscrub_run):
    """The profile keeps a few technical labels that Table E.1-1 does not list
    (SequenceName, coil names): a patient's ID typed into one is left to the
    leak check, which must withhold the output rather than write it."""
    from pydicom.data import get_testdata_file

    inputs = tmp_path / "in"
    inputs.mkdir()
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    ds.PatientID = "PID20240917"
    ds.SequenceName = "PID20240917"
    ds.save_as(inputs / "mr.dcm")
    result = medscrub_run(inputs, tmp_path / "out")
    record = result.records["mr.dcm"]
    assert record["status"] == "failed" and record["reason"].startswith("leak check"), record
    assert not (tmp_path / "out" / "mr.dcm").exists()


def test_a_serial_number_that_occurs_inside_a_new_uid_does_not_withhold_the_output(tmp_path, medscrub_run):
    """A 5-digit DeviceSerialNumber ("25641" in the Siemens MR test file) is
    remembered for the raw byte scan; a new 2.25 UID is a 39-digit decimal
    number, so about one output in 300 contains the serial by chance and was
    withheld ("leak check: device in bytes").  Here the serial is chosen to
    occur in the new SOP Instance UID: the output must still be written."""
    from pydicom.data import get_testdata_file

    from medscrub.pseudonyms import Pseudonymizer, Secret

    inputs = tmp_path / "in"
    inputs.mkdir()
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    new_sop = Pseudonymizer(Secret(SECRET)).uid(str(ds.SOPInstanceUID))
    ds.DeviceSerialNumber = new_sop.removeprefix("2.25.")[10:15]
    ds.save_as(inputs / "ct.dcm")
    result = medscrub_run(inputs, tmp_path / "out", secret=SECRET)
    record = result.records["ct.dcm"]
    assert record["status"] == "done", record["reason"]
    assert dcmread(tmp_path / "out" / "ct.dcm").SOPInstanceUID == new_sop
