"""The fast paths of medscrub-dicom give exactly what pydicom gives.

The plugin reads files with its own parser (``medscrub_dicom.parse``, held
to ``dcmread`` in test_parse.py), reads the values it changes most (UIDs, dates, codes, plain ASCII
names and IDs) from the raw bytes and stores their replacements as raw bytes
(``medscrub_dicom.raw``), sets its markers as encoded elements, and writes
files with its own encoder (``medscrub_dicom.encoder``), handing pydicom
whatever it cannot write exactly as ``dcmwrite`` would.  These tests hold
those paths to pydicom's own behaviour over every object of the corpus:

- the whole plugin, fast, against the same plugin with pydicom doing every
  read, conversion, assignment and write: the same bytes, the same changes, the
  same remembered identifiers, the same datasets read back at every depth;
- the encoder against ``dcmwrite`` on the same cleaned dataset;
- the raw decoding and encoding against pydicom's converters and writers,
  element by element;
- the fallbacks: big endian, deflated and DICOMDIR go through ``dcmwrite``;
- determinism: the same input and secret give the same bytes in every run.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import pytest

pytest.importorskip("medscrub_dicom", reason="the DICOM plugin (medscrub-dicom) is not installed")

from pydicom import Dataset, dcmread, dcmwrite  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataelem import DataElement, RawDataElement  # noqa: E402
from pydicom.filebase import DicomBytesIO  # noqa: E402
from pydicom.filewriter import write_data_element  # noqa: E402
from pydicom.tag import Tag  # noqa: E402
from pydicom.uid import UID  # noqa: E402

from medscrub import Item  # noqa: E402
from medscrub.context import RunConfig, RunContext  # noqa: E402
from medscrub.pipeline import discover, process_item  # noqa: E402
from medscrub.pseudonyms import Secret  # noqa: E402
from medscrub_dicom import encoder, markers, plugin, profile, raw, reader, writer  # noqa: E402
from medscrub_dicom.markers import mark_clean_pixel_data  # noqa: E402

SECRET = b"s" * 32

# Every action with a value: shift, clean, hash, pseudonymise, replace, the
# options that keep and clean, site rules of every selector kind.
OPTIONS_RECIPE = """
[dates]
policy = "shift"

[dicom]
clean_descriptors = true
clean_structured_content = true
clean_graphics = true
retain_safe_private = true
retain_patient_characteristics = true
retain_device_identity = true

[[rules]]
match = "AccessionNumber"
action = "hash"

[[rules]]
match = "Modality"
action = "hash"

[[rules]]
match = "(0019,xx0C)@SIEMENS MR HEADER"
action = "keep"

[[rules]]
match = "vr:AE"
action = "empty"
format = "dicom"

[[rules]]
match = "InstitutionName"
action = "replace"
value = "TRIAL SITE 07"

[[rules]]
match = "StudyID"
action = "pseudonymise"

[[rules]]
match = "SeriesNumber"
action = "replace"
value = "7"
"""
KEEP_RECIPE = """
[dates]
policy = "keep"

[dicom]
retain_uids = true
patient_name = "empty"
unknown_text = "keep"
"""
RECIPES = {"default": None, "options": OPTIONS_RECIPE, "keep": KEEP_RECIPE}


def make_context(tmp: Path, recipe: str | None) -> RunContext:
    path = None
    if recipe is not None:
        path = tmp / "recipe.toml"
        path.write_text(recipe)
    return RunContext(RunConfig(path, Secret(SECRET), tmp, tmp / "out", plugins=("dicom",)))


@contextmanager
def pydicom_everywhere():
    """The plugin with every file read, every value read and assigned and
    every file written by pydicom."""
    with pytest.MonkeyPatch.context() as mp:
        for module in (raw, profile, markers):
            mp.setattr(module, "pydicom_defaults", lambda: False)
        mp.setattr(writer, "encode_file", lambda ds: None)
        mp.setattr(reader, "read_file", lambda path: None)
        yield


class Sink:
    """The part of the core's output sink a writer uses."""

    def __init__(self, path: Path) -> None:
        self.target = path
        self.ranges: list[tuple[int, int]] = []

    def path(self, relative=None) -> Path:
        return self.target

    def opaque(self, path: Path, ranges) -> None:
        assert Path(path) == self.target
        self.ranges += list(ranges)


@dataclass
class Cleaned:
    status: str  # "ok" or the error
    data: bytes | None = None
    changes: list = field(default_factory=list)
    identifiers: dict = field(default_factory=dict)
    flags: dict = field(default_factory=dict)
    opaque: list = field(default_factory=list)


def clean(path: Path, context: RunContext, target: Path, mark_pixels: bool = False) -> Cleaned:
    """Read, clean and write one file with the plugin's hooks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            asset = plugin.read(Item(path.name, "dicom", (path,), path.parent, path.stat().st_size))
            plugin.scrub_asset(asset, context)
            if mark_pixels:
                mark_clean_pixel_data(asset.data)
            plugin.medscrub_inspect(asset=asset, context=context)
            sink = Sink(target)
            if target.exists():
                target.unlink()
            plugin.medscrub_write(asset=asset, sink=sink, context=context)
        except Exception as e:  # the two paths must fail alike too
            return Cleaned(f"{type(e).__name__}: {e}")
    data = target.read_bytes() if target.exists() else None
    return Cleaned("ok", data, list(asset.changes), {k: sorted(v) for k, v in asset.identifiers.items()},
                   dict(asset.flags), sink.ranges)


def spy(function, calls: list):
    """``function``, noting each result in ``calls``."""

    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        calls.append(result)
        return result

    return wrapper


def read_back(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(BytesIO(data), force=True)


def differences(a: Dataset, b: Dataset, where: str = "") -> list[str]:
    """Where two datasets differ, element by element at every depth."""
    out = []
    for tag in sorted(set(a._dict) | set(b._dict)):
        here = f"{where}{Tag(tag)}"
        if tag not in a._dict or tag not in b._dict:
            out.append(f"{here} only in {'the first' if tag in a._dict else 'the second'}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, y = a[tag], b[tag]
        if x.VR != y.VR:
            out.append(f"{here} VR {x.VR} != {y.VR}")
        elif x.VR == "SQ":
            if len(x.value) != len(y.value):
                out.append(f"{here} {len(x.value)} items != {len(y.value)}")
            for i, (p, q) in enumerate(zip(x.value, y.value, strict=False)):
                out += differences(p, q, f"{here}[{i}]>")
        elif x.value != y.value:
            out.append(f"{here} {x.value!r:.40} != {y.value!r:.40}")
    return out


def file_differences(fast: bytes, slow: bytes) -> list[str]:
    a, b = read_back(fast), read_back(slow)
    found = differences(a.file_meta, b.file_meta, "meta ") + differences(a, b)
    if a.preamble != b.preamble:
        found.append("preamble")
    return found


# -- the whole plugin, fast and through pydicom ------------------------------


@pytest.fixture(scope="module", params=sorted(RECIPES))
def both_paths(request, dicom_corpus, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"paths-{request.param}")
    context = make_context(tmp, RECIPES[request.param])
    fast, slow = {}, {}
    for n, corpus_file in enumerate(dicom_corpus):
        fast[corpus_file.name] = clean(corpus_file.path, context, tmp / f"{n}-fast.dcm")
    with pydicom_everywhere():
        context = make_context(tmp, RECIPES[request.param])  # a fresh plan: nothing cached from the fast run
        for n, corpus_file in enumerate(dicom_corpus):
            slow[corpus_file.name] = clean(corpus_file.path, context, tmp / f"{n}-slow.dcm")
    return request.param, fast, slow


def test_fast_and_pydicom_paths_clean_every_file_alike(both_paths):
    recipe, fast, slow = both_paths
    problems = []
    written = 0
    for name in fast:
        a, b = fast[name], slow[name]
        if a.status != b.status:
            problems.append(f"{name}: {a.status} != {b.status}")
            continue
        if a.changes != b.changes:
            problems.append(f"{name}: other changes recorded")
        if a.identifiers != b.identifiers:
            problems.append(f"{name}: other identifiers remembered")
        if a.flags != b.flags:
            problems.append(f"{name}: flags {a.flags} != {b.flags}")
        if a.data is None or b.data is None:
            if a.data != b.data:
                problems.append(f"{name}: written by one path only")
            continue
        written += 1
        found = file_differences(a.data, b.data)
        if found:
            problems.append(f"{name}: {'; '.join(found[:3])}")
        elif a.data != b.data:
            problems.append(f"{name}: the same datasets, other bytes")
    assert written > 200, f"only {written} files written with recipe {recipe!r}"
    assert not problems, f"recipe {recipe!r}:\n" + "\n".join(problems)


def test_pixel_samples_are_declared_and_nothing_else(both_paths):
    """Native pixel data is declared whole; of compressed pixel data, only
    the entropy-coded ranges of its codestreams (their marker segments,
    which can hold text, stay in the leak check's search)."""
    from medscrub_dicom.codestreams import sample_ranges

    _, fast, _ = both_paths
    native = compressed = 0
    for name, result in fast.items():
        if result.data is None:
            continue
        ds = read_back(result.data)
        ts = UID(ds.file_meta.TransferSyntaxUID)
        if not ts.is_compressed:
            for start, end in result.opaque:
                native += 1
                assert result.data[start:end] == ds.PixelData, name
            continue
        if result.opaque:
            value = ds.PixelData
            at = result.data.index(value)
            assert result.opaque == [(at + a, at + b) for a, b in sample_ranges(value, str(ts))], name
            compressed += 1
    assert native > 80 and compressed > 20


# -- the encoder against dcmwrite ---------------------------------------------


def fast_cleaned(path: Path, context: RunContext) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            asset = plugin.read(Item(path.name, "dicom", (path,), path.parent, 1))
            if plugin.scrub_asset(asset, context) is None:
                return None  # a dropped DICOMDIR
        except Exception:
            return None
    ds = asset.data
    return None if plugin._state(ds).dicomdir else ds


def test_the_encoder_writes_what_dcmwrite_writes(dicom_corpus, tmp_path, monkeypatch):
    """``write_file`` with the encoder against ``write_file`` with dcmwrite
    only, on two copies of the same cleaned dataset."""
    context = make_context(tmp_path, None)
    used: list = []
    problems, encoded = [], 0
    for corpus_file in dicom_corpus:
        ds = fast_cleaned(corpus_file.path, context)
        if ds is None:
            continue
        ts = UID(ds.file_meta.TransferSyntaxUID)
        used.clear()
        monkeypatch.setattr(writer, "encode_file", spy(encoder.encode_file, used))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                writer.write_file(ds, tmp_path / "fast.dcm")
                fast = (tmp_path / "fast.dcm").read_bytes()
            except Exception as e:
                fast = f"{type(e).__name__}: {e}"
            monkeypatch.setattr(writer, "encode_file", lambda ds: None)
            try:
                writer.write_file(fast_cleaned(corpus_file.path, context), tmp_path / "slow.dcm")
                slow = (tmp_path / "slow.dcm").read_bytes()
            except Exception as e:
                slow = f"{type(e).__name__}: {e}"
        usual = ts.is_little_endian and ts != "1.2.840.10008.1.2.1.99" and ts.is_transfer_syntax
        fast_path = len(used) == 1 and used[0] is not None
        if usual and not fast_path:
            problems.append(f"{corpus_file.name}: left to dcmwrite ({ts.name})")
        if not usual and fast_path:
            problems.append(f"{corpus_file.name}: encoded although {ts.name}")
        encoded += fast_path
        if fast != slow:
            found = file_differences(fast, slow) if isinstance(fast, bytes) and isinstance(slow, bytes) else []
            problems.append(f"{corpus_file.name}: {'; '.join(found[:3]) or 'other bytes or errors'}")
    assert encoded > 200
    assert not problems, "\n".join(problems)


# -- the fallbacks ------------------------------------------------------------


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "image_dfl.dcm"])
def test_big_endian_and_deflated_go_to_dcmwrite(name, tmp_path, monkeypatch):
    path = Path(get_testdata_file(name))
    context = make_context(tmp_path, None)
    ds = fast_cleaned(path, context)
    assert ds is not None and encoder.encode_file(ds) is None
    calls: list = []
    monkeypatch.setattr(writer, "dcmwrite", spy(writer.dcmwrite, calls))
    fast = clean(path, context, tmp_path / "fast.dcm")
    assert calls and fast.status == "ok" and fast.opaque == []
    monkeypatch.undo()
    with pydicom_everywhere():
        slow = clean(path, make_context(tmp_path, None), tmp_path / "slow.dcm")
    assert fast.data == slow.data
    assert not file_differences(fast.data, slow.data)


def test_dicomdir_goes_to_dcmwrite(tmp_path, monkeypatch):
    path = Path(get_testdata_file("DICOMDIR"))
    context = make_context(tmp_path, None)
    used: list = []
    monkeypatch.setattr(writer, "encode_file", spy(encoder.encode_file, used))
    fast = clean(path, context, tmp_path / "fast")
    assert fast.status == "ok" and fast.data and not used
    monkeypatch.undo()
    with pydicom_everywhere():
        slow = clean(path, make_context(tmp_path, None), tmp_path / "slow")
    assert fast.data == slow.data


def test_a_dataset_in_another_encoding_is_left_to_pydicom(tmp_path):
    """An item read in one encoding inside a dataset written in another, and
    elements pydicom must convert, go through pydicom's own writers."""
    path = Path(get_testdata_file("CT_small.dcm"))
    ds = fast_cleaned(path, make_context(tmp_path, None))
    item = Dataset()
    item.CodeValue = "T-D1100"
    item.CodeMeaning = "Ünicode bödy"  # not ASCII: pydicom encodes it
    item.set_original_encoding(True, True, "iso8859")  # read as implicit VR, written explicit
    ds.AnatomicRegionSequence = [item]
    ds.StudyComments = "Ça va"
    result = encoder.encode_file(ds)
    assert result is not None
    expected = BytesIO()
    dcmwrite(expected, ds, enforce_file_format=True)
    assert b"".join(result.chunks) == expected.getvalue()


@pytest.mark.parametrize("read_as", ["latin_1", "iso8859"])
@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"])
def test_converted_elements_are_encoded_as_pydicom_does(syntax, read_as):
    """Elements a cleaner or the profile converted or set, of every kind the
    encoder writes itself or hands to pydicom; and the same dataset when its
    character set changed since it was read (pydicom then converts it all)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.sequence import Sequence

    implicit = syntax == "1.2.840.10008.1.2"
    ds = Dataset()
    ds.set_original_encoding(implicit, True, [read_as])  # as read from a file in ISO_IR 100 (latin_1)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"  # odd length: padded with a NUL
    ds.ImageType = ["DERIVED", "SECONDARY", ""]
    ds.Modality = ""
    ds.StudyDate = "20010203"
    ds.InstitutionName = "Größe"  # not ASCII: pydicom encodes it
    ds.StudyDescription = "A"  # odd: padded with a space
    ds.OtherPatientIDs = ["A1", "B22"]
    ds.PatientName = "Doe^J"
    ds.PatientWeight = "70.5"
    ds.Rows = 2
    ds.add_new(0x00091010, "LO", "ACME")  # a private creator
    ds.add_new(0x00091011, "UN", b"\x01\x02\x03")  # UN: not padded
    ds.add_new(0x00091012, "OB", b"\x01\x02\x03")  # OB: padded
    ds.add_new(0x00091013, "OW", b"\x01\x02\x03\x04")
    ds.add_new(0x00091014, "OB", b"")
    item = Dataset()
    item.set_original_encoding(implicit, True, ["latin_1"])
    item.CodeValue = "121"
    inner = Dataset()
    inner.CodeMeaning = "new, never read"
    inner.is_undefined_length_sequence_item = True
    item.ConceptCodeSequence = Sequence([inner])
    ds.ConceptNameCodeSequence = Sequence([item, Dataset()])
    ds.ConceptNameCodeSequence[1].set_original_encoding(implicit, True, ["latin_1"])
    ds["ConceptNameCodeSequence"].is_undefined_length = True
    ds.ReferencedImageSequence = Sequence()
    ds.add_new(0x7FE00010, "OB", b"\xfe\xff\x00\xe0\x00\x00\x00\x00" if syntax.endswith(".50") else b"\x00\x01" * 4)
    ds.file_meta = FileMetaDataset()
    for tag, vr, value in ((0x00020001, "OB", b"\x00\x01"), (0x00020002, "UI", ds.SOPClassUID),
                           (0x00020003, "UI", ds.SOPInstanceUID), (0x00020010, "UI", syntax),
                           (0x00020012, "UI", "1.2.3"), (0x00020013, "SH", "TEST")):
        ds.file_meta[tag] = DataElement(tag, vr, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = encoder.encode_file(ds)
        expected = BytesIO()
        dcmwrite(expected, ds, enforce_file_format=True)
    assert result is not None
    assert b"".join(result.chunks) == expected.getvalue()
    assert (not result.samples) == (syntax.endswith(".50") or read_as != "latin_1")


def test_a_pixel_cleaner_marks_a_fast_cleaned_file_as_before(tmp_path):
    """Markers set as encoded elements take a pixel cleaner's code as the
    DataElements did."""
    path = Path(get_testdata_file("CT_small.dcm"))
    fast = clean(path, make_context(tmp_path, None), tmp_path / "fast.dcm", mark_pixels=True)
    with pydicom_everywhere():
        slow = clean(path, make_context(tmp_path, None), tmp_path / "slow.dcm", mark_pixels=True)
    assert fast.data == slow.data
    codes = [item.CodeValue for item in read_back(fast.data).DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113101"]


# -- raw values against pydicom's converters and writers ----------------------


def raw_elements(ds: Dataset, depth: int = 0):
    """(dataset, tag, raw element) at the top level and in sequence items."""
    for tag, elem in list(ds._dict.items()):
        if isinstance(elem, RawDataElement):
            yield ds, tag, elem
        if depth == 0 and elem.VR == "SQ":
            try:
                items = ds[tag].value or ()
            except Exception:  # a damaged sequence: not what this test is about
                continue
            for item in items:
                yield from raw_elements(item, depth + 1)


def test_raw_values_decode_and_encode_as_pydicom_does(dicom_corpus):
    checked = encoded = 0
    problems = []
    for corpus_file in dicom_corpus:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = dcmread(corpus_file.path, force=True)
            except Exception:
                continue
            for holder, tag, elem in list(raw_elements(ds)):
                vr = raw.fast_vr(elem, tag)
                if vr is None:
                    continue
                values = raw.values_of(elem, vr, raw.Values(holder))
                if values is None:
                    continue
                try:
                    converted = holder[tag]
                except Exception:
                    continue
                checked += 1
                value = converted.value
                expected = [] if value is None else [str(v) for v in profile._values(value)]
                if [str(v) for v in values] != expected and not (expected == [] and values == [""]):
                    problems.append(f"{corpus_file.name} {Tag(tag)}: {values!r:.60} != {expected!r:.60}")
                    continue
                data = raw.encoded(converted.VR, values, raw.Values(holder))
                if data is None:
                    continue
                encoded += 1
                element = DataElement(tag, converted.VR, values[0] if len(values) == 1 else values)
                buffer = DicomBytesIO()
                buffer.is_implicit_VR, buffer.is_little_endian = True, True
                write_data_element(buffer, element, holder._character_set)
                if buffer.getvalue()[8:] != data:
                    problems.append(f"{corpus_file.name} {Tag(tag)}: encoded {data!r:.40} != {buffer.getvalue()[8:]!r:.40}")
    assert checked > 5000 and encoded > 5000, (checked, encoded)
    assert not problems, "\n".join(problems[:20])


# -- determinism ----------------------------------------------------------------


def test_the_same_input_and_secret_give_the_same_bytes(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm"):
        (source / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    outputs = []
    for run in ("one", "two"):
        context = RunContext(RunConfig(None, Secret(SECRET), source, tmp_path / run, plugins=("dicom",)))
        results = [process_item(item, context) for item in discover(context) if isinstance(item, Item)]
        assert [r.status for r in results] == ["done"] * 5
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).glob("*.dcm"))})
    assert len(outputs[0]) == 5 and outputs[0] == outputs[1]
