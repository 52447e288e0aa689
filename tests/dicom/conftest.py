"""Shared DICOM fixtures: the pydicom corpus, planted PHI and a leak scanner.

What this module offers to every DICOM test:

- ``dicom_corpus``: every DICOM object that pydicom and pydicom-data ship
  (about 260: 13 character sets, compressed, big endian, deflated,
  DICOMDIRs, fragments and deliberately broken files), as ``CorpusFile``.
- ``phi_marker``: a ``PhiMarker`` with values unique to this test session.
- ``plant_phi(ds, marker)``: writes the marker into a dataset at the top
  level, at depths 1 to 3 of new and existing sequences, in private blocks
  (a creator on the PS3.15 safe list and ones that are not), the file meta and
  DICOMDIR records.
- ``originals_of(ds)``: the identifying values of a dataset, raw and decoded,
  that no output may keep.
- ``scan_for_phi(path, originals, marker)``: every place in a file where such a
  value or the marker is left, in raw bytes (inflated when deflated) and in
  parsed values at any depth; ``[]`` when clean.
- ``make_series``: a small multi-file CT series with references between its
  instances, optionally with a DICOMDIR.
- ``medscrub_run``: runs the whole pipeline with the DICOM plugin (only) and
  returns the exit code and the manifest records.
- ``dicom_helpers``: the functions above, for tests that build their own inputs.
"""

from __future__ import annotations

import copy
import json
import random
import secrets
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom import dcmread  # noqa: E402
from pydicom.charset import convert_encodings, encode_string  # noqa: E402
from pydicom.data import data_manager  # noqa: E402
from pydicom.dataelem import RawDataElement  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

# Everything under these that is not a DICOM object: notes, dumps, an ICC
# profile, a gzip file, JSON models of datasets.
NOT_DICOM_SUFFIXES = {".py", ".pyc", ".txt", ".md", ".json", ".dump", ".icc", ".gz"}
DEFLATED = "1.2.840.10008.1.2.1.99"
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, FloatPixelData, DoubleFloatPixelData
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    name: str  # unique relative POSIX path: "<source>/<path inside it>"


def corpus_sources() -> dict[str, Path]:
    """The folders pydicom's data manager reads test data from, by source."""
    sources = {"pydicom": Path(data_manager.DATA_ROOT)}
    external = data_manager.external_data_sources().get("pydicom-data")
    if external is not None:
        sources["pydicom-data"] = Path(external.data_path)
    return sources


def is_dicom_object(path: Path) -> bool:
    """A DICOM object: a Part 10 file ("DICM" at 128) or a ``.dcm`` file
    without the preamble (a bare dataset, as several test files are)."""
    if not path.is_file() or path.suffix.lower() in NOT_DICOM_SUFFIXES or path.name.startswith("README"):
        return False
    with open(path, "rb") as f:
        head = f.read(132)
    return head[128:132] == b"DICM" or path.suffix.lower() == ".dcm"


def collect_corpus() -> list[CorpusFile]:
    """Every DICOM object of pydicom's test data, found through its data
    manager (which includes pydicom-data when it is installed)."""
    from pydicom.data import get_charset_files, get_palette_files, get_testdata_files

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the data manager warns that it cannot download here
        listed = [*get_testdata_files("**/*"), *get_charset_files("**/*"), *get_palette_files("**/*")]
    paths = {Path(p) for p in listed}
    sources = corpus_sources()
    found = []
    for path in sorted(paths):
        if not is_dicom_object(path):
            continue
        for label, root in sources.items():
            if root in path.parents:
                found.append(CorpusFile(path, f"{label}/{path.relative_to(root).as_posix()}"))
                break
    return sorted(found, key=lambda c: c.name)


@pytest.fixture(scope="session")
def dicom_corpus() -> list[CorpusFile]:
    if "pydicom-data" not in corpus_sources():
        pytest.skip("pydicom-data is not installed: pip install pydicom-data")
    return collect_corpus()


# ---------------------------------------------------------------------------
# Planted PHI
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PhiMarker:
    """Values unique to one test session; every planted string holds ``token``."""

    token: str
    birth_date: str
    other_date: str
    uid_root: str

    @classmethod
    def new(cls) -> PhiMarker:
        rng = random.Random(secrets.randbits(64))
        token = "QZ" + secrets.token_hex(5).upper()
        # years no corpus file uses, so that a match is the planted date
        birth = f"19{rng.randint(1, 19):02d}{rng.randint(1, 12):02d}{rng.randint(10, 28):02d}"
        other = f"19{rng.randint(1, 19):02d}{rng.randint(1, 12):02d}{rng.randint(10, 28):02d}"
        return cls(token, birth, other, f"1.2.826.0.1.3680043.9.{rng.randint(10**6, 10**7)}.")

    @property
    def name(self) -> str:
        return f"Plantedsurname{self.token}^Plantedgiven{self.token}"

    @property
    def patient_id(self) -> str:
        return f"ID{self.token}"

    @property
    def short(self) -> str:  # fits SH (16 characters)
        return f"S{self.token}"

    @property
    def institution(self) -> str:
        return f"Hospital {self.token}"

    @property
    def address(self) -> str:
        return f"12 {self.token} Street, Springfield"

    @property
    def free_text(self) -> str:
        return f"Seen by Dr Who{self.token} for {self.name}, phone 555-{self.token}"

    def uid(self, n: int) -> str:
        return f"{self.uid_root}{n}"

    def dates(self) -> tuple[str, ...]:
        return (self.birth_date, self.other_date)

    def uids(self) -> tuple[str, ...]:
        return tuple(self.uid(n) for n in range(1, 10))


@pytest.fixture(scope="session")
def phi_marker() -> PhiMarker:
    return PhiMarker.new()


# Private creators of the planted private blocks.  GEMS_ACQU_01 (0019,xx9E,
# LO) is on the PS3.15 Table E.3.10-1 safe list; the others are not.
SAFE_CREATOR, SAFE_GROUP, SAFE_OFFSET = "GEMS_ACQU_01", 0x0019, 0x9E
UNSAFE_CREATOR = "ACME PHI SCANNER 1.0"
NESTED_CREATOR = "ACME NESTED 2"


def _text_item(marker: PhiMarker, depth: int) -> Dataset:
    item = Dataset()
    item.PatientName = marker.name
    item.PatientID = marker.patient_id
    item.InstitutionName = marker.institution
    item.PatientBirthDate = marker.birth_date
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    item.ReferencedSOPInstanceUID = marker.uid(depth)
    return item


def _existing_items(ds: Dataset, depth: int = 1) -> Iterator[tuple[int, Dataset]]:
    """(depth, item) for the items of the sequences a dataset already has."""
    for elem in list(ds):
        if elem.VR == "SQ" and elem.tag != 0x00041220:  # records are planted on their own
            for item in elem.value:
                yield depth, item
                if depth < 3:
                    yield from _existing_items(item, depth + 1)


def plant_phi(ds: Dataset, marker: PhiMarker) -> None:
    """Write ``marker`` into ``ds`` everywhere PHI hides."""
    # In the sequences the file already has, at each depth from 1 to 3.
    planted_depths: set[int] = set()
    for depth, item in _existing_items(ds):
        if depth not in planted_depths:
            planted_depths.add(depth)
            item.PatientName = marker.name
            item.PatientID = marker.patient_id
            item.InstitutionName = marker.institution
            item.StudyDate = marker.other_date
            item.private_block(0x0017, NESTED_CREATOR, create=True).add_new(0x02, "LO", marker.patient_id)
    # Top level.
    ds.PatientName = marker.name
    ds.PatientID = marker.patient_id
    ds.PatientBirthDate = marker.birth_date
    ds.OtherPatientNames = marker.name
    ds.InstitutionName = marker.institution
    ds.InstitutionAddress = marker.address
    ds.ReferringPhysicianName = f"Referrer{marker.token}^Doctor"
    ds.AccessionNumber = marker.short
    ds.StudyID = marker.short
    ds.StudyDate = marker.other_date
    ds.PatientComments = marker.free_text
    ds.ImageComments = marker.free_text
    ds.AdditionalPatientHistory = marker.free_text
    ds.IssuerOfPatientID = marker.institution
    # Descriptions and comments the profile removes, and a text element that
    # Table E.1-1 does not list (FrameLabel), which a default run empties.
    ds.ProtocolName = f"Protocol for {marker.name}"
    ds.DerivationDescription = marker.free_text
    ds.PerformedProcedureStepDescription = marker.free_text
    ds.FrameLabel = marker.free_text[:64]
    # A public element stored with VR UN (explicit VR files keep it so).
    ds.add_new(0x00101000, "UN", f"UN{marker.token} ".encode())  # OtherPatientIDs
    # Depth 1: other patient IDs.
    other = Dataset()
    other.PatientID = f"OID{marker.token}"
    other.IssuerOfPatientID = marker.institution
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    # Depths 1 -> 2 -> 3: a study reference with request attributes that refer
    # to another study.
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study_ref.ReferencedSOPInstanceUID = marker.uid(1)
    request = Dataset()
    request.RequestedProcedureID = marker.short
    request.ScheduledProcedureStepID = marker.short
    request.AccessionNumber = marker.short
    request.RequestedProcedureDescription = marker.free_text
    request.ReferencedStudySequence = Sequence([_text_item(marker, 3)])
    study_ref.RequestAttributesSequence = Sequence([request])
    if "ReferencedStudySequence" in ds and ds["ReferencedStudySequence"].VR == "SQ":
        ds.ReferencedStudySequence.append(study_ref)
    else:
        ds.ReferencedStudySequence = Sequence([study_ref])
    # Depths 1 -> 2 -> 3 of structured content.
    leaf = Dataset()
    leaf.RelationshipType = "HAS OBS CONTEXT"
    leaf.ValueType = "PNAME"
    leaf.PersonName = marker.name
    uidref = Dataset()
    uidref.RelationshipType = "HAS OBS CONTEXT"
    uidref.ValueType = "UIDREF"
    uidref.UID = marker.uid(4)
    middle = Dataset()
    middle.RelationshipType = "CONTAINS"
    middle.ValueType = "DATE"
    middle.Date = marker.birth_date
    middle.ContentSequence = Sequence([leaf, uidref])
    top = Dataset()
    top.RelationshipType = "CONTAINS"
    top.ValueType = "TEXT"
    top.TextValue = marker.free_text
    top.ContentSequence = Sequence([middle])
    if "ContentSequence" in ds and ds["ContentSequence"].VR == "SQ":
        ds.ContentSequence.append(top)
    else:
        ds.ContentSequence = Sequence([top])
    # Private blocks: one not on the safe list (with a nested private block),
    # one whose creator itself names the site, one on the safe list.
    block = ds.private_block(0x0011, UNSAFE_CREATOR, create=True)
    block.add_new(0x10, "LO", marker.name.replace("^", " "))
    block.add_new(0x11, "UT", marker.free_text)
    block.add_new(0x12, "OB", (marker.free_text + " ").encode()[: len(marker.free_text) // 2 * 2])
    block.add_new(0x13, "UI", marker.uid(5))
    nested = Dataset()
    nested.PatientName = marker.name
    nested.private_block(0x0013, NESTED_CREATOR, create=True).add_new(0x01, "LO", marker.patient_id)
    block.add_new(0x14, "SQ", Sequence([nested]))
    ds.private_block(0x0015, f"SITE {marker.token}", create=True).add_new(0x01, "LO", marker.institution)
    ds.private_block(SAFE_GROUP, SAFE_CREATOR, create=True).add_new(SAFE_OFFSET, "LO", marker.name.replace("^", " "))
    # The file meta: application titles and private information.
    meta = getattr(ds, "file_meta", None)
    if meta is not None and len(meta):
        meta.SourceApplicationEntityTitle = marker.short[:16]
        meta.SendingApplicationEntityTitle = marker.short[:16]
        meta.PrivateInformationCreatorUID = marker.uid(6)
        text = marker.free_text.encode()
        meta.PrivateInformation = text + b" " * (len(text) % 2)
    # DICOMDIR records.
    for record in ds.get("DirectoryRecordSequence", ()):
        kind = str(record.get("DirectoryRecordType", "")).strip()
        if kind == "PATIENT" or "PatientID" in record or "PatientName" in record:
            record.PatientName = marker.name
            record.PatientID = marker.patient_id
            record.PatientBirthDate = marker.birth_date
        if kind == "STUDY":
            record.AccessionNumber = marker.short
            record.StudyDescription = marker.free_text
            record.StudyDate = marker.other_date


def _record_offsets(ds: Dataset) -> list[int]:
    return [int(getattr(r, "seq_item_tell", -1)) for r in ds.get("DirectoryRecordSequence", ())]


def _relink_directory(ds: Dataset, old: list[int], path: Path) -> None:
    """After records grew, point every directory offset at its record again."""
    new = _record_offsets(dcmread(path))
    moved = {o: n for o, n in zip(old, new, strict=True) if o >= 0}
    keywords = ("OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity")
    for record in ds.DirectoryRecordSequence:
        for kw in keywords:
            if kw in record and record[kw].value in moved:
                record[kw].value = moved[record[kw].value]
    for kw in ("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity", "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity"):
        if kw in ds and ds[kw].value in moved:
            ds[kw].value = moved[ds[kw].value]
    ds.save_as(path, enforce_file_format=False)


def read_any(path: Path) -> Dataset:
    """Read a Part 10 file, or a bare dataset without the preamble."""
    try:
        return dcmread(path)
    except pydicom.errors.InvalidDicomError:
        return dcmread(path, force=True)


def write_planted(source: Path, target: Path, marker: PhiMarker) -> Dataset:
    """Plant ``marker`` into a copy of ``source`` at ``target``, in the source's
    own encoding (transfer syntax, or none for a bare dataset)."""
    ds = read_any(source)
    offsets = _record_offsets(ds)
    plant_phi(ds, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(target, enforce_file_format=False)
        if offsets:
            _relink_directory(ds, offsets, target)
    return ds


# ---------------------------------------------------------------------------
# Identifying values of an input
# ---------------------------------------------------------------------------

# UI elements that name a kind of thing, not an instance: they stay.
CLASS_UID_KEYWORDS = {
    "SOPClassUID", "MediaStorageSOPClassUID", "ReferencedSOPClassUID", "ReferencedSOPClassUIDInFile",
    "TransferSyntaxUID", "ReferencedTransferSyntaxUIDInFile", "ImplementationClassUID", "CodingSchemeUID",
    "ContextGroupExtensionCreatorUID", "SOPClassesInStudy", "RelatedGeneralSOPClassUID",
    "OriginalSpecializedSOPClassUID", "MappingResourceUID", "AffectedSOPClassUID", "RequestedSOPClassUID",
}
IDENTITY_KEYWORDS = {
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "IssuerOfPatientID", "InstitutionName", "InstitutionAddress",
    "PatientAddress", "PatientTelephoneNumbers", "AccessionNumber",
}
DATE_KEYWORDS = {"PatientBirthDate"}
PLACEHOLDERS = {"anonymous", "anonymized", "anon", "unknown", "none", "n/a", "na"}
NAME_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC"}


@dataclass
class Originals:
    """The identifying values of one input that must not reach its output."""

    text: set[str] = field(default_factory=set)  # names, IDs, institutions (decoded)
    raw: set[bytes] = field(default_factory=set)  # the same as the file stored them
    dates: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    encodings: list[str] = field(default_factory=lambda: ["iso8859"])

    def update(self, other: Originals) -> None:
        self.text |= other.text
        self.raw |= other.raw
        self.dates |= other.dates
        self.uids |= other.uids


def _raw_bytes(ds: Dataset, tag) -> bytes | None:
    elem = ds.get_item(tag)
    if isinstance(elem, RawDataElement) and elem.value is not None:
        return bytes(elem.value)
    return None


def _strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [s for v in value for s in _strings(v)]
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value).decode("latin-1")]
    return [str(value)]


def originals_of(ds: Dataset) -> Originals:
    """Names, IDs, institutions, birth dates and instance UIDs of ``ds`` at any
    depth (file meta included), decoded and as stored."""
    found = Originals()
    charset = ds.get("SpecificCharacterSet")
    found.encodings = convert_encodings(list(charset) if charset and not isinstance(charset, str) else charset)

    def visit(dataset: Dataset) -> None:
        for tag in list(dataset.keys()):
            raw = _raw_bytes(dataset, tag)
            try:
                elem = dataset[tag]
            except Exception:  # a value pydicom cannot convert: its raw bytes still count
                continue
            keyword = elem.keyword
            if elem.VR == "SQ":
                for item in elem.value:
                    visit(item)
                continue
            if keyword in IDENTITY_KEYWORDS:
                for text in _strings(elem.value):
                    if text.strip(" \0"):
                        found.text.add(text.strip(" \0"))
                if raw and raw.strip(b" \0"):
                    found.raw.add(raw.strip(b" \0"))
            elif keyword in DATE_KEYWORDS:
                found.dates |= {d.strip() for d in _strings(elem.value) if d.strip()}
            elif elem.VR == "UI" and keyword not in CLASS_UID_KEYWORDS:
                for uid in _strings(elem.value):
                    uid = uid.strip(" \0")
                    # "0" and other non-UIDs (no dot) identify nothing and also fill class slots
                    if "." in uid and not uid.startswith("1.2.840.10008."):
                        found.uids.add(uid)

    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        visit(meta)
    visit(ds)
    # Not identifying: placeholders, and an institution named like the
    # device's maker, which the profile keeps ("TOSHIBA" of "TOSHIBA_MEC").
    makers = {str(e.value).strip().lower() for e in ds.iterall() if e.keyword == "Manufacturer" and e.value}

    def innocent(value: str) -> bool:
        value = value.strip().lower()
        return value in PLACEHOLDERS or any(value in maker for maker in makers)

    found.text = {t for t in found.text if not innocent(t)}
    found.raw = {r for r in found.raw if not innocent(r.decode("latin-1"))}
    return found


# ---------------------------------------------------------------------------
# The leak scanner
# ---------------------------------------------------------------------------

MIN_RAW = 5  # shorter values match pixel bytes by chance
MIN_RAW_UID = 8


@dataclass(frozen=True)
class Leak:
    file: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.file}: {self.what} in {self.where}"


def file_bytes(path: Path) -> bytes:
    """The file's bytes, followed by its inflated dataset when it is deflated."""
    data = Path(path).read_bytes()
    if DEFLATED.encode() in data[:1024]:
        try:
            ds = dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
            start = ds.file_meta.get("FileMetaInformationGroupLength", 0) + 144
            data += b"\n" + zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[start:])
        except Exception:  # an unreadable output is reported by the parsed scan
            pass
    return data


def _encodings(value: str, encodings: list[str]) -> set[bytes]:
    out = set()
    for codec in ("utf-8", "latin-1"):
        try:
            out.add(value.encode(codec))
        except UnicodeEncodeError:
            pass
    try:
        encoded = encode_string(value, encodings)
        out.add(encoded)
        out.add(encoded.removeprefix(b"\x1b(B"))
    except Exception:
        pass
    return out


def _uid_in(data: bytes, uid: bytes) -> int:
    """Offset of ``uid`` as a whole UID (not part of a longer one), or -1."""
    at = data.find(uid)
    while at >= 0:
        before = data[at - 1 : at] if at else b""
        after = data[at + len(uid) : at + len(uid) + 1]
        if not (before and before in b"0123456789.") and not (after and after in b"0123456789."):
            return at
        at = data.find(uid, at + 1)
    return -1


def _parts(text: str) -> set[str]:
    """A value and its name components (PN ``^`` and ``=`` groups)."""
    parts = {text}
    for group in text.split("="):
        parts.add(group)
        parts |= set(group.split("^"))
    return {p.strip() for p in parts if p.strip()}


def walk_values(ds: Dataset, path: str = "") -> Iterator[tuple[str, object]]:
    """(place, element) for every element of ``ds`` at any depth, file meta first."""
    meta = getattr(ds, "file_meta", None)
    if not path and meta is not None:
        for elem in meta:
            yield f"meta{elem.tag}", elem
    for elem in ds:
        place = f"{path}{elem.tag}"
        yield place, elem
        if elem.VR == "SQ":
            for n, item in enumerate(elem.value):
                yield from walk_values(item, f"{place}[{n}]")


def scan_for_phi(
    path: Path,
    originals: Originals,
    marker: PhiMarker | None = None,
    label: str | None = None,
    encodings: list[str] | None = None,
) -> list[Leak]:
    """Every original identifying value or planted marker left in ``path``."""
    label = label or Path(path).name
    leaks: list[Leak] = []
    data = file_bytes(path)
    codecs = list(dict.fromkeys([*originals.encodings, *(encodings or [])]))
    texts = {p for t in originals.text for p in _parts(t) if len(p) >= MIN_RAW}
    raw_needles: dict[bytes, str] = {}
    for text in texts:
        for raw in _encodings(text, codecs):
            raw_needles.setdefault(raw, f"original value {text[:3]}***")
    for raw in originals.raw:
        for part in {raw, *raw.split(b"^"), *raw.split(b"=")}:
            if len(part.strip()) >= MIN_RAW:
                raw_needles.setdefault(part.strip(), "original value as stored")
    for date in originals.dates | set(marker.dates() if marker else ()):
        if len(date) >= 8:
            raw_needles.setdefault(date.encode(), f"date {date[:4]}****")
    if marker is not None:
        for form in {marker.token, marker.token.lower(), marker.token.capitalize()}:
            raw_needles[form.encode()] = "planted marker"
            raw_needles[form.encode("utf-16-le")] = "planted marker (utf-16)"
    for needle, what in raw_needles.items():
        at = data.find(needle)
        if at >= 0:
            leaks.append(Leak(label, f"bytes at {at}", what))
    uids = originals.uids | set(marker.uids() if marker else ())
    for uid in uids:
        if len(uid) < MIN_RAW_UID:  # "0" or "1.2" occur anywhere; the parsed check still compares them
            continue
        at = _uid_in(data, uid.encode())
        if at >= 0:
            leaks.append(Leak(label, f"bytes at {at}", f"original UID {uid[:8]}..."))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(path, force=True)
            elements = list(walk_values(ds))
    except Exception as e:
        leaks.append(Leak(label, "file", f"unreadable: {type(e).__name__}: {e}"))
        return leaks
    lowered = {t.lower() for t in texts}  # parts of 5 or more characters: found inside values
    whole = {t.lower().strip() for t in originals.text}  # whole values of any length: found as values
    dates = originals.dates | set(marker.dates() if marker else ())
    for place, elem in elements:
        if elem.VR == "SQ" or elem.tag in PIXEL_TAGS:
            continue
        try:
            values = _strings(elem.value)
        except Exception:
            continue
        for value in values:
            low = value.lower().strip(" \0")
            if marker is not None and marker.token.lower() in low:
                leaks.append(Leak(label, place, "planted marker (parsed)"))
            if elem.VR in NAME_VRS or elem.VR in ("UN", "OB"):  # not CS: defined terms such as PERFUSION
                if any(t in low for t in lowered) or low in whole:
                    leaks.append(Leak(label, place, "original identifying value (parsed)"))
            if elem.VR in ("DA", "DT") and any(low.startswith(d) for d in dates):
                leaks.append(Leak(label, place, "original or planted date (parsed)"))
            if elem.VR == "UI" and value.strip(" \0") in uids:
                leaks.append(Leak(label, place, "original UID (parsed)"))
    return leaks


# ---------------------------------------------------------------------------
# Fixtures: helpers as fixtures, so that test modules need no imports from here
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dicom_helpers():
    """The helpers of this module, for tests that build their own inputs."""

    class Helpers:
        read_any = staticmethod(read_any)
        plant_phi = staticmethod(plant_phi)
        write_planted = staticmethod(write_planted)
        originals_of = staticmethod(originals_of)
        scan_for_phi = staticmethod(scan_for_phi)
        file_bytes = staticmethod(file_bytes)
        walk_values = staticmethod(walk_values)
        read_manifest = staticmethod(read_manifest)
        build_series = staticmethod(build_series)
        only_dicom_env = {"MEDSCRUB_LOAD_PLUGINS": ",".join(ONLY_DICOM)}
        Originals = Originals
        PIXEL_TAGS = PIXEL_TAGS

    return Helpers


def build_series(folder: Path, count: int = 4, dicomdir: bool = False, patient: str = "Series^Patient") -> list[Path]:
    """``count`` CT instances of one series (shared study, series and frame of
    reference UIDs), each referring to the one before it, plus a DICOMDIR
    made with ``pydicom.fileset.FileSet`` when asked.  Returns the files."""
    from pydicom.data import get_testdata_file

    template = dcmread(get_testdata_file("CT_small.dcm"))
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    instances = []
    previous = None
    for n in range(count):
        ds = copy.deepcopy(template)
        ds.PatientName = patient
        ds.PatientID = "SER" + patient.split("^")[0].upper()[:8]
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = n + 1
        if previous is not None:
            ref = Dataset()
            ref.ReferencedSOPClassUID = previous.SOPClassUID
            ref.ReferencedSOPInstanceUID = previous.SOPInstanceUID
            ds.ReferencedImageSequence = Sequence([ref])
            source = Dataset()
            source.ReferencedSOPClassUID = previous.SOPClassUID
            source.ReferencedSOPInstanceUID = previous.SOPInstanceUID
            derivation = Dataset()
            derivation.SourceImageSequence = Sequence([source])
            ds.DerivationImageSequence = Sequence([derivation])
        instances.append(ds)
        previous = ds
    folder.mkdir(parents=True, exist_ok=True)
    if dicomdir:
        from pydicom.fileset import FileSet

        fileset = FileSet()
        for ds in instances:
            fileset.add(ds)
        fileset.write(folder)
        return sorted(p for p in folder.rglob("*") if p.is_file())
    paths = []
    for n, ds in enumerate(instances):
        path = folder / f"slice{n:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def make_series() -> Callable[..., list[Path]]:
    return build_series


# These tests are about the DICOM plugin: other installed plugins stay out.
ONLY_DICOM = ("dicom",)


@dataclass
class RunResult:
    exit_code: int
    records: dict[str, dict]  # manifest record by item id
    output: Path


def run_medscrub(input_root: Path, output_root: Path, secret: bytes = b"s" * 32, workers: int = 2, recipe: Path | None = None,
                 cleaners: tuple[str, ...] = (), extra: tuple = ()) -> RunResult:
    """Run the installed plugins over ``input_root`` through the library API;
    ``cleaners`` and ``extra`` plugins (registered for this run) as asked."""
    from medscrub.context import RunConfig
    from medscrub.pipeline import run_batch
    from medscrub.pseudonyms import Secret

    config = RunConfig(
        recipe, Secret(secret, "test"), Path(input_root).absolute(), Path(output_root).absolute(), plugins=ONLY_DICOM,
        cleaners=tuple(cleaners), extra_plugins=tuple(extra),
    )
    summary = run_batch(config, workers=workers)
    return RunResult(summary.exit_code, read_manifest(output_root), Path(output_root))


def read_manifest(output_root: Path) -> dict[str, dict]:
    records = {}
    with open(Path(output_root) / ".medscrub" / "manifest.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            records[record["id"]] = record
    return records


@pytest.fixture(scope="session")
def medscrub_run() -> Callable[..., RunResult]:
    """``medscrub_run(input, output, secret=..., workers=2, recipe=None, cleaners=(), extra=())``;
    skips when the DICOM plugin is not installed."""
    pytest.importorskip("medscrub_dicom", reason="the DICOM plugin (medscrub-dicom) is not installed")
    return run_medscrub


