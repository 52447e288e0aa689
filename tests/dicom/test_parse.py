"""medscrub_dicom.parse builds the very dataset ``dcmread(path, force=True)``
builds, and converts a sequence as pydicom's ``ds[tag]`` does.

Every object of the corpus is read both ways and compared as pydicom left
it: the same elements in the same order, each still raw or converted as
pydicom left it, the same raw fields (VR, length, bytes, position,
encoding), the same sequences and items, the same dataset attributes and
file meta, and the same warnings.  Crafted files cover what the corpus
lacks: an undefined-length sequence after a character set, a value cut
off by the end of the file, an unknown VR, a command set.  Every sequence of
the corpus, at every depth, is converted both ways and compared the same
way.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest

pytest.importorskip("medscrub_dicom", reason="the DICOM plugin (medscrub-dicom) is not installed")

from pydicom import Dataset, dcmread  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataelem import RawDataElement  # noqa: E402
from pydicom.dataset import FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian  # noqa: E402

from medscrub_dicom import parse  # noqa: E402

# what Dataset, FileDataset and sequence items hold besides their elements
ATTRIBUTES = (
    "_read_little", "_read_implicit", "_read_charset", "_parent_encoding", "is_undefined_length_sequence_item",
    "preamble", "filename", "fileobj_type", "timestamp", "buffer", "_is_little_endian", "_is_implicit_VR",
    "seq_item_tell", "file_tell", "is_decompressed", "_private_blocks", "_pixel_rep",
)


def differences(a: Dataset, b: Dataset, where: str = "") -> list[str]:
    """How two datasets differ as read, without converting anything."""
    out = []
    for name in ATTRIBUTES:
        x, y = a.__dict__.get(name, "-"), b.__dict__.get(name, "-")
        if name == "buffer":  # a deflated file's inflated data set: one object per read
            x, y = type(x), type(y)
        if x != y or type(x) is not type(y):
            out.append(f"{where}{name}: {x!r:.50} != {y!r:.50}")
    if set(a.__dict__) != set(b.__dict__):
        out.append(f"{where}attributes {sorted(set(a.__dict__) ^ set(b.__dict__))}")
    if list(a._dict) != list(b._dict):
        return out + [f"{where}other elements or order"]
    for tag, x in a._dict.items():
        y = b._dict[tag]
        here = f"{where}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if type(x) is not type(y):
            out.append(f"{here} {type(x).__name__} != {type(y).__name__}")
        elif isinstance(x, RawDataElement):
            if tuple(x) != tuple(y) or [type(v) for v in x] != [type(v) for v in y]:
                out.append(f"{here} {tuple(x)!r:.80} != {tuple(y)!r:.80}")
        elif (x.VR, x.file_tell, x.is_undefined_length) != (y.VR, y.file_tell, y.is_undefined_length):
            out.append(f"{here} VR, position or length form")
        elif x.VR == "SQ":
            if len(x.value) != len(y.value) or (getattr(x.value, "is_undefined_length", None)
                                                != getattr(y.value, "is_undefined_length", None)):
                out.append(f"{here} other items")
            for i, (p, q) in enumerate(zip(x.value, y.value, strict=False)):
                out += differences(p, q, f"{here}[{i}]>")
        elif x.value != y.value or type(x.value) is not type(y.value):
            out.append(f"{here} {x.value!r:.40} != {y.value!r:.40}")
    return out


def both(path: Path) -> tuple[object, object, list[str], list[str]]:
    """(fast read or None or error, dcmread or error, their warnings)."""
    results, caught = [], []
    for read in (parse.read_file, lambda p: dcmread(p, force=True)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                results.append(read(path))
            except Exception as e:
                results.append(f"{type(e).__name__}: {e}")
        caught.append([str(w.message) for w in seen])
    return results[0], results[1], caught[0], caught[1]


def compare(path: Path) -> list[str]:
    fast, slow, fast_warnings, slow_warnings = both(path)
    if fast is None:
        return []
    if isinstance(fast, str) or isinstance(slow, str):
        return [f"{fast!r:.80} != {slow!r:.80}"]
    found = differences(fast, slow) + differences(fast.file_meta, slow.file_meta, "meta ")
    if type(fast) is not type(slow) or type(fast.file_meta) is not type(slow.file_meta):
        found.append("other classes")
    if fast_warnings != slow_warnings:
        found.append(f"warnings {fast_warnings} != {slow_warnings}")
    # and once pydicom has converted everything, still the same values
    if not found and shown(fast) != shown(slow):
        found.append("other values once converted")
    return found


def shown(ds: Dataset) -> str:
    """Every value, converted by pydicom (or the error that stops it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return str(ds)
        except Exception as e:
            return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize("window", [parse.WINDOW, 13, 300])
def test_every_corpus_file_reads_as_dcmread_reads_it(dicom_corpus, window, monkeypatch):
    """With the usual window, and with small ones that put a window's end
    inside headers and values."""
    monkeypatch.setattr(parse, "WINDOW", window)
    problems, fast = [], 0
    for corpus_file in dicom_corpus:
        fast += parse.read_file(corpus_file.path) is not None
        found = compare(corpus_file.path)
        if found:
            problems.append(f"{corpus_file.name}: {'; '.join(found[:3])}")
    assert fast > 200  # the fast path is the usual one
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "image_dfl.dcm", "no_meta.dcm", "meta_missing_tsyntax.dcm"])
def test_what_pydicom_reads_its_own_way_is_left_to_it(name):
    assert parse.read_file(get_testdata_file(name)) is None


# -- crafted files -------------------------------------------------------------


def _explicit(tag: int, vr: bytes, value: bytes, undefined: bool = False) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OF", b"OD", b"OL", b"OV", b"SV", b"UV"):
        length = 0xFFFFFFFF if undefined else len(value)
        return struct.pack("<HH2s2xL", tag >> 16, tag & 0xFFFF, vr, length) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def _implicit(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def _file(body: bytes, syntax: str = ExplicitVRLittleEndian) -> bytes:
    uid = syntax.encode() + (b"\0" if len(syntax) % 2 else b"")
    meta = (_explicit(0x00020001, b"OB", b"\0\1") + _explicit(0x00020002, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0")
            + _explicit(0x00020003, b"UI", b"1.2.3.4") + _explicit(0x00020010, b"UI", uid))
    return b"\0" * 128 + b"DICM" + _explicit(0x00020000, b"UL", struct.pack("<L", len(meta))) + meta + body


_ITEM = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
_ITEM_END = b"\xfe\xff\x0d\xe0\0\0\0\0"
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\0\0\0\0"

CRAFTED = {
    # a character set, then an undefined-length sequence of undefined-length items whose text is in it
    "charset-sequence": _file(
        _explicit(0x00080005, b"CS", b"ISO_IR 100")
        + _explicit(0x00081140, b"SQ", _ITEM + _explicit(0x00081150, b"UI", b"1.2.3\0")
                    + _explicit(0x00100010, b"PN", "Müller".encode("latin-1")) + _ITEM_END + _SEQUENCE_END,
                    undefined=True)
        + _explicit(0x00100020, b"LO", b"ID1 ")
    ),
    # encapsulated pixel data, then an element after it
    "encapsulated": _file(
        _explicit(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0")
        + _explicit(0x7FE00010, b"OB", b"\xfe\xff\x00\xe0\0\0\0\0" + b"\xfe\xff\x00\xe0\4\0\0\0abcd" + _SEQUENCE_END,
                    undefined=True)
        + _explicit(0xFFFCFFFC, b"OB", b"pad!"),
        "1.2.840.10008.1.2.4.50",
    ),
    # a value that runs past the end of the file
    "cut-off": _file(_explicit(0x00100010, b"PN", b"Doe^Jane") + _explicit(0x00100020, b"LO", b"ID1 ")[:-2]),
    # an unknown VR, and one pydicom takes for implicit VR
    "odd-vrs": _file(_explicit(0x00100010, b"PN", b"Doe^Jane") + _explicit(0x00091001, b"QQ", b"abcd")
                     + struct.pack("<HH", 0x0009, 0x1002) + b"\x04\x00\x00\x00abcd"
                     + _explicit(0x00100020, b"LO", b"ID1 ")),
    # an empty value of each kind pydicom reads as None or b""
    "empty-values": _file(_explicit(0x00100010, b"PN", b"") + _explicit(0x00280010, b"US", b"")
                          + _explicit(0x00181310, b"US", b"") + _explicit(0x7FE00010, b"OW", b"")),
    # implicit VR with an undefined-length sequence
    "implicit": _file(
        _implicit(0x00100010, b"Doe^Jane") + struct.pack("<HHL", 0x0008, 0x1140, 0xFFFFFFFF) + _ITEM
        + _implicit(0x00081150, b"1.2.3\0") + _ITEM_END + _SEQUENCE_END + _implicit(0x00100020, b"ID1 "),
        ImplicitVRLittleEndian,
    ),
    # an item delimiter at the top level ends the data set
    "stray-delimiter": _file(_explicit(0x00100010, b"PN", b"Doe^Jane") + _ITEM_END + _explicit(0x00100020, b"LO", b"ID")),
    # a file meta group length that is wrong (pydicom logs it and goes on)
    "wrong-group-length": b"\0" * 128 + b"DICM" + _explicit(0x00020000, b"UL", struct.pack("<L", 3))
    + _explicit(0x00020010, b"UI", b"1.2.840.10008.1.2.1\0") + _explicit(0x00100010, b"PN", b"Doe^Jane"),
    # only a preamble and a file meta
    "meta-only": _file(b""),
    # no preamble: a bare data set with a file meta
    "no-preamble": _file(_explicit(0x00100010, b"PN", b"Doe^Jane"))[132:],
}


@pytest.mark.parametrize("window", [parse.WINDOW, 7])
@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_files_read_as_dcmread_reads_them(name, window, tmp_path, monkeypatch):
    monkeypatch.setattr(parse, "WINDOW", window)
    path = tmp_path / f"{name}.dcm"
    path.write_bytes(CRAFTED[name])
    assert not compare(path)


def test_the_usual_crafted_files_take_the_fast_path(tmp_path):
    for name in ("charset-sequence", "encapsulated", "cut-off", "odd-vrs", "empty-values", "implicit", "meta-only"):
        path = tmp_path / f"{name}.dcm"
        path.write_bytes(CRAFTED[name])
        ds = parse.read_file(path)
        assert ds is not None, name
        assert isinstance(ds.file_meta, FileMetaDataset)
    ds = parse.read_file(tmp_path / "charset-sequence.dcm")
    items = ds.ReferencedImageSequence
    assert isinstance(items, Sequence) and str(items[0].PatientName) == "Müller"


def test_a_command_set_is_left_to_dcmread(tmp_path):
    path = tmp_path / "command.dcm"
    path.write_bytes(_file(_implicit(0x00000002, b"1.2.3\0") + _explicit(0x00100010, b"PN", b"Doe^Jane")))
    assert parse.read_file(path) is None
    assert not compare(path)


def test_another_pydicom_is_left_to_pydicom(tmp_path, monkeypatch):
    path = tmp_path / "charset-sequence.dcm"
    path.write_bytes(CRAFTED["charset-sequence"])
    assert parse.read_file(path) is not None
    monkeypatch.setattr(parse, "_EXACT", False)  # as under a pydicom other than parse.EXACT_FOR
    assert parse.read_file(path) is None
    ds = dcmread(path, force=True)
    tag = 0x00081140  # ReferencedImageSequence
    assert parse.sequence(ds, tag) is ds[tag] and ds._dict[tag].__class__ is not RawDataElement


# -- sequences -------------------------------------------------------------------


def convert_all(a: Dataset, b: Dataset, where: str = "") -> tuple[list[str], int]:
    """Convert every element of ``a`` and ``b`` at every depth, sequences of
    ``a`` with :func:`parse.sequence` and everything else with pydicom; how
    they then differ, and how many sequences the fast path converted."""
    out, fast = [], 0
    for tag in list(b._dict):
        here = f"{where}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        raw = a._dict[tag]
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                y = b[tag]
            except Exception as e:
                y = f"{type(e).__name__}: {e}"
            slow_warnings = [str(w.message) for w in seen]
            del seen[:]
            try:
                x = parse.sequence(a, tag) if not isinstance(y, str) and y.VR == "SQ" else a[tag]
            except Exception as e:
                x = f"{type(e).__name__}: {e}"
            fast_warnings = [str(w.message) for w in seen]
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                out.append(f"{here} {x!r:.60} != {y!r:.60}")
            continue
        if fast_warnings != slow_warnings:
            out.append(f"{here} warnings {fast_warnings} != {slow_warnings}")
        if y.VR == "SQ":
            fast += isinstance(raw, RawDataElement) and raw.VR == "SQ" and bool(raw.value)
            for i, (p, q) in enumerate(zip(x.value, y.value, strict=False)):
                found, n = convert_all(p, q, f"{here}[{i}]>")
                out += found
                fast += n
    return out + differences(a, b, where), fast


def test_every_corpus_sequence_converts_as_pydicom_converts_it(dicom_corpus):
    problems, fast = [], 0
    for corpus_file in dicom_corpus:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                a, b = dcmread(corpus_file.path, force=True), dcmread(corpus_file.path, force=True)
            except Exception:
                continue
        found, n = convert_all(a, b)
        fast += n
        if found:
            problems.append(f"{corpus_file.name}: {'; '.join(found[:3])}")
    assert fast > 200  # sequences of defined length, read by parse at every depth
    assert not problems, "\n".join(problems)


def test_crafted_sequences_convert_as_pydicom_converts_them(tmp_path):
    item = _explicit(0x00081150, b"UI", b"1.2.3\0") + _explicit(0x00100010, b"PN", "Müller".encode("latin-1"))
    nested = _explicit(0x00081140, b"SQ", b"\xfe\xff\x00\xe0" + struct.pack("<L", len(item)) + item)
    implicit_item = _implicit(0x00081150, b"1.2.3\0")
    cases = {
        # defined-length items, one holding a nested sequence, one empty
        "nested": b"\xfe\xff\x00\xe0" + struct.pack("<L", len(nested)) + nested + b"\xfe\xff\x00\xe0\0\0\0\0",
        # an undefined-length item, then a sequence delimiter inside a defined-length sequence
        "delimited": _ITEM + item + _ITEM_END + _SEQUENCE_END,
        # an implicit VR item in an explicit VR file
        "implicit-item": b"\xfe\xff\x00\xe0" + struct.pack("<L", len(implicit_item)) + implicit_item,
        # an item longer than the sequence
        "overrun": b"\xfe\xff\x00\xe0" + struct.pack("<L", len(item) + 40) + item,
        # a stray item delimiter in a defined-length item
        "stray": b"\xfe\xff\x00\xe0" + struct.pack("<L", len(item) + 8) + _ITEM_END + item,
        # a broken item header
        "broken": b"\xfe\xff\x00\xe0" + struct.pack("<L", len(item)) + item + b"\xfe\xff",
    }
    for name, value in cases.items():
        path = tmp_path / f"{name}.dcm"
        path.write_bytes(_file(_explicit(0x00080005, b"CS", b"ISO_IR 100") + _explicit(0x00089215, b"SQ", value)))
        a, b = dcmread(path, force=True), dcmread(path, force=True)
        found, _ = convert_all(a, b)
        assert not found, f"{name}: {found}"
