"""Write small or large synthetic twix files (VB and VD/VE) with planted PHI.

For tests and the benchmark: every identifying field this plugin knows is
planted in every buffer, in the single-line and the multi-line XProtocol
syntax and in ASCCONV, plus the exam date inside unrelated strings and the
patient name in the file header and in stale header padding.  The data are
real readouts (scan header, channel headers, complex64 samples) that
twixtools and mapVBVD read, closed by an ACQEND record.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .layout import ENTRY_SIZE, FILE_HEADER_SIZE

ONLINE = 1 << 3
FIRSTSCANINSLICE = 1 << 28
LASTSCANINSLICE = 1 << 29
LASTSCANINMEAS = 1 << 11
ACQEND = 1 << 0


@dataclass
class Phi:
    """The planted values; every one must be gone from a scrubbed output."""

    name: str = "Doe^Jane Quinn"
    patient_id: str = "PAT-7781-XQ"
    birth: str = "19710423"
    sex: str = "2"
    age: str = "52.000000"
    weight: str = "71.300000"
    height: str = "1680.000000"
    institution: str = "St. Elsewhere Hospital"
    institution_other: str = "SEH Radiology North Wing"
    address: str = "12 Harbour Road,Springfield,District,US,90210"
    serial: str = "166042"
    model: str = "19"
    exam_date: str = "20230915"
    exam_time: str = "142233"
    calib_date: str = "20220107"
    physician: str = "House^Gregory^Dr"
    operator: str = "Ratched^Mildred"
    patient_loid: str = "8.0.51234567"
    study_loid: str = "8.0.51234571"
    series_loid: str = "8.0.51234579"
    accession: str = "ACC90817263"
    study_description: str = "Doe follow-up glioma"

    @property
    def frame_of_reference(self) -> str:
        return f"1.3.12.2.1107.5.2.{self.model}.{self.serial}.1.{self.exam_date}{self.exam_time}512.0.0.0"

    def reference_image(self, k: int) -> str:
        return f"1.3.12.2.1107.5.2.{self.model}.{self.serial}.{self.exam_date}{self.exam_time}{k:02d}8812345"

    @property
    def exam_memory_uid(self) -> str:
        return f"8_0_{self.study_loid.split('.')[-1]}_{self.exam_date}_{self.exam_time}_650"

    def planted(self) -> list[str]:
        """Every value (and part) that must not survive."""
        return [self.name, self.patient_id, self.birth, self.institution, self.institution_other, self.address,
                self.serial, self.exam_date, self.calib_date, self.physician, self.operator,
                self.patient_loid.split(".")[-1], self.study_loid.split(".")[-1], self.series_loid.split(".")[-1],
                self.accession, self.study_description, self.frame_of_reference, self.exam_memory_uid,
                "Harbour Road", "Elsewhere"]


def _single(kind: str, name: str, value: str) -> str:
    body = f'"{value}"' if kind in ("String",) else value
    return f'<Param{kind}."{name}">  {{ {body}  }}\n'


def _multi(kind: str, name: str, value: str, indent: str, extra: str = "") -> str:
    body = f'"{value}"' if kind == "String" else value
    return (f'{indent}<Param{kind}."{name}"> \n{indent}{{\n{indent}  {extra}{body} \n{indent}}}\n')


def _fields(phi: Phi, protocol: str) -> list[tuple[str, str, str]]:
    return [
        ("String", "tPatientName", phi.name), ("String", "PatientName", phi.name),
        ("String", "PatientsName", phi.name), ("String", "PatientID", phi.patient_id),
        ("String", "PatientBirthDay", phi.birth), ("Long", "PatientSex", phi.sex), ("Long", "lPatientSex", phi.sex),
        ("Double", "flPatientAge", f"<Precision> 6  {phi.age}"),
        ("Double", "flUsedPatientWeight", f"<Precision> 6  {phi.weight}"),
        ("Double", "flPatientHeight", f'<Unit> "[mm]" <Precision> 6  {phi.height}'),
        ("String", "InstitutionName", phi.institution), ("String", "InstitutionAddress", phi.address),
        ("String", "DeviceSerialNumber", phi.serial),
        ("String", "DICOM_UID_ROOT", f"1.3.12.2.1107.5.2.{phi.model}.{phi.serial}"),
        ("String", "FrameOfReference", phi.frame_of_reference),
        ("String", "tFrameOfReference", phi.frame_of_reference),
        ("String", "ExamMemoryUID", phi.exam_memory_uid),
        ("String", "PatientLOID", phi.patient_loid), ("String", "StudyLOID", phi.study_loid),
        ("String", "SeriesLOID", phi.series_loid), ("String", "Study", phi.study_loid),
        ("String", "Patient", phi.patient_loid), ("String", "StudyLoid", phi.study_loid),
        ("String", "PatientLoid", phi.patient_loid), ("String", "tCurrentMppsLoid", phi.series_loid),
        ("String", "tPerfPhysiciansName", phi.physician), ("String", "OperatorsName", phi.operator),
        ("String", "AccessionNumber", phi.accession), ("String", "tStudyDescription", phi.study_description),
        ("String", "tProtocolName", protocol), ("String", "SequenceDescription", protocol),
        ("String", "tReferenceImage0", phi.reference_image(0)),
        ("String", "tSequenceVariantNote", f"acquired {phi.exam_date} {phi.exam_time} on {phi.serial}"),
        ("Long", "NImageLins", "4"), ("String", "SoftwareVersions", "syngo MR E11"),
    ]


def _xprot(phi: Phi, protocol: str, buffer: str, multi: bool, institution: str) -> str:
    lines = [f'<XProtocol> \n{{\n  <Name> "{buffer}" \n  <ParamMap.""> \n  {{\n']
    for kind, name, value in _fields(phi, protocol):
        if name == "InstitutionName":
            value = institution
        if multi:
            extra = '<Visible> "true" \n    ' if name.endswith("LOID") or "Name" in name else ""
            if name in ("StudyLOID", "SeriesLOID"):
                extra = "<MinSize> 1 \n    <MaxSize> 1 \n    "
            lines.append(_multi(kind, name, value, "    ", extra))
        else:
            lines.append("    " + _single(kind, name, value))
    if multi:
        lines.append(f'    <ParamString."atTXCalibDate"> \n    {{\n      "{phi.calib_date}" "" "" \n    }}\n')
        lines.append('    <ParamArray."ReferencedImageSequence"> \n    {\n      <Default> <ParamString.""> \n'
                     f'      {{\n      }}\n      {{ "{phi.reference_image(1)}"  }}\n'
                     f'      {{ "{phi.reference_image(2)}"  }}\n    }}\n')
    else:
        lines.append('    <ParamArray."atTXCalibDate"> \n    {\n      <Default> <ParamString.""> \n      {\n'
                     f'      }}\n      {{ "{phi.calib_date}"  }}\n    }}\n')
    lines.append('    <ParamLong."ImageColumns">  { 64  }\n  }\n}\n')
    return "".join(lines)


def _ascconv(phi: Phi, protocol: str) -> str:
    return ("### ASCCONV BEGIN object=MrProtDataImpl@MrProtocolData version=41340006 ###\n"
            "ulVersion\t = \t0x14b44b6\n"
            f'tProtocolName\t = \t"{protocol}"\n'
            f'tReferenceImage0\t = \t"{phi.reference_image(0)}"\n'
            f'tReferenceImage1\t = \t"{phi.reference_image(1)}"\n'
            f'sStudyInfo.tPatientName\t = \t"{phi.name}"\n'
            f'sProtConsistencyInfo.tMeasuredBaselineString\t = \t"N4_VE11C_LATEST_20160120"\n'
            f'sWipMemBlock.tFree\t = \t"scan {phi.exam_date}_{phi.exam_time} {phi.institution}"\n'
            "sKSpace.lBaseResolution\t = \t64\n"
            "### ASCCONV END ###\n")


def header_buffers(phi: Phi, protocol: str) -> list[tuple[str, bytes]]:
    """The six buffers of one measurement header."""
    return [
        ("Config", _xprot(phi, protocol, "Config", False, phi.institution).encode("latin-1")),
        ("Dicom", _xprot(phi, protocol, "Dicom", False, phi.institution_other).encode("latin-1")),
        ("Meas", _xprot(phi, protocol, "Meas", True, phi.institution).encode("latin-1")),
        ("MeasYaps", _ascconv(phi, protocol).encode("latin-1")),
        ("Phoenix", (_xprot(phi, protocol, "Phoenix", True, phi.institution_other)
                     + _ascconv(phi, protocol)).encode("latin-1")),
        ("Spice", _xprot(phi, protocol, "Spice", False, phi.institution).encode("latin-1")),
    ]


def compact_buffers(phi: Phi) -> list[tuple[str, bytes]]:
    """A header of a few hundred bytes, as short VB headers are."""
    config = (f'<XProtocol> \n{{\n  <ParamString."tPatientName">  {{ "{phi.name}"  }}\n'
              f'  <ParamString."PatientID">  {{ "{phi.patient_id}"  }}\n}}\n')
    dicom = (f'<XProtocol> \n{{\n  <ParamString."InstitutionName">  {{ "{phi.institution}"  }}\n'
             f'  <ParamString."DeviceSerialNumber">  {{ "{phi.serial}"  }}\n'
             f'  <ParamString."SoftwareVersions">  {{ "syngo MR B17"  }}\n}}\n')
    return [("Config", config.encode()), ("Dicom", dicom.encode())]


def measurement_header(phi: Phi, protocol: str, stale: bytes = b"", compact: bool = False) -> bytes:
    buffers = compact_buffers(phi) if compact else header_buffers(phi, protocol)
    body = b"".join(name.encode() + b"\0" + struct.pack("<I", len(text)) + text for name, text in buffers)
    length = 8 + len(body) + len(stale)
    length += (-length) % 32
    padding = stale + bytes(length - 8 - len(body) - len(stale))
    return struct.pack("<II", length, len(buffers)) + body + padding


@dataclass
class Scan:
    """One measurement: ``lines`` readouts of ``channels`` x ``columns`` samples."""

    protocol: str = "t1_fl3d_DOE"
    lines: int = 8
    channels: int = 2
    columns: int = 64
    meas_id: int = 101
    seed: int = 1


def _vd_readout(scan: Scan, line: int, samples: bytes) -> bytes:
    dma = 192 + scan.channels * (32 + 8 * scan.columns)
    mask = ONLINE | (FIRSTSCANINSLICE if line == 0 else 0)
    if line == scan.lines - 1:
        mask |= LASTSCANINSLICE | LASTSCANINMEAS
    head = bytearray(192)
    struct.pack_into("<IiIII", head, 0, dma, scan.meas_id, line + 1, 1000 + line, 2000 + line)
    struct.pack_into("<QHH", head, 40, mask, scan.columns, scan.channels)
    struct.pack_into("<H", head, 52, line)  # Counter.Lin
    struct.pack_into("<H", head, 84, scan.columns // 2)  # CenterCol
    struct.pack_into("<H", head, 96, scan.lines // 2)  # CenterLin
    parts = [bytes(head)]
    step = 8 * scan.columns
    for c in range(scan.channels):
        ch = bytearray(32)
        struct.pack_into("<IiI", ch, 0, 32 + step, scan.meas_id, line + 1)
        struct.pack_into("<H", ch, 24, c)
        parts.append(bytes(ch) + samples[c * step:(c + 1) * step])
    return b"".join(parts)


def _vb_readout(scan: Scan, line: int, samples: bytes) -> bytes:
    mask = ONLINE | (FIRSTSCANINSLICE if line == 0 else 0)
    if line == scan.lines - 1:
        mask |= LASTSCANINSLICE | LASTSCANINMEAS
    step = 8 * scan.columns
    parts = []
    for c in range(scan.channels):
        head = bytearray(128)
        struct.pack_into("<IiIII", head, 0, 128 + step, scan.meas_id, line + 1, 1000 + line, 2000 + line)
        struct.pack_into("<QHH", head, 20, mask, scan.columns, scan.channels)
        struct.pack_into("<H", head, 32, line)  # Counter.Lin
        struct.pack_into("<H", head, 64, scan.columns // 2)  # CenterCol
        struct.pack_into("<H", head, 76, scan.lines // 2)  # CenterLin
        struct.pack_into("<H", head, 124, c)  # ChannelId
        parts.append(bytes(head) + samples[c * step:(c + 1) * step])
    return b"".join(parts)


def _acqend(version: str, scan: Scan) -> bytes:
    if version == "VD":
        head = bytearray(192)
        struct.pack_into("<IiI", head, 0, 352, scan.meas_id, scan.lines + 1)
        struct.pack_into("<QHH", head, 40, ACQEND, 16, 1)
        return bytes(head) + bytes(160)
    head = bytearray(128)
    struct.pack_into("<IiI", head, 0, 128, scan.meas_id, scan.lines + 1)
    struct.pack_into("<QHH", head, 20, ACQEND, 16, 1)
    return bytes(head)


def _samples(scan: Scan, line: int) -> bytes:
    rng = random.Random(scan.seed * 1_000_003 + line)
    n = scan.channels * scan.columns * 2
    return struct.pack(f"<{n}f", *(rng.uniform(-1e-3, 1e-3) for _ in range(n)))


def _write_data(f, version: str, scan: Scan, total_readouts_bytes: int | None = None) -> None:
    readout = _vd_readout if version == "VD" else _vb_readout
    if total_readouts_bytes is None:
        for line in range(scan.lines):
            f.write(readout(scan, line, _samples(scan, line)))
    else:
        # The benchmark: a block of distinct readouts written again and again.
        block = b"".join(readout(scan, line, _samples(scan, line)) for line in range(256))
        left = total_readouts_bytes
        while left >= len(block):
            f.write(block)
            left -= len(block)
        one = len(readout(scan, 0, _samples(scan, 0)))
        for line in range(left // one):
            f.write(readout(scan, line, _samples(scan, line)))
    f.write(_acqend(version, scan))


@dataclass
class Twix:
    version: str = "VD"
    scans: list[Scan] = field(default_factory=lambda: [Scan("AdjCoilSens", 4, 2, 32, 100, 7), Scan()])
    phi: Phi = field(default_factory=Phi)
    stale_padding: bool = True
    compact: bool = False  # a short header (VB files can have one under 10000 bytes)


def write(path: Path, spec: Twix | None = None, data_bytes: int | None = None) -> Path:
    """Write ``spec`` to ``path``; ``data_bytes`` makes the last scan about that large."""
    spec = spec or Twix()
    path = Path(path)
    stale = f"old {spec.phi.name} {spec.phi.patient_id}".encode() if spec.stale_padding else b""
    with open(path, "wb") as f:
        if spec.version == "VB":
            scan = spec.scans[-1]
            f.write(measurement_header(spec.phi, scan.protocol, stale, spec.compact))
            _write_data(f, "VB", scan, data_bytes)
            return path
        f.write(bytes(FILE_HEADER_SIZE))
        entries = []
        for k, scan in enumerate(spec.scans):
            start = f.tell()
            f.write(measurement_header(spec.phi, scan.protocol, stale))
            _write_data(f, "VD", scan, data_bytes if k == len(spec.scans) - 1 else None)
            end = f.tell()
            f.write(bytes((-end) % 512))
            entries.append((scan, start, end - start))
        head = bytearray(FILE_HEADER_SIZE)
        struct.pack_into("<II", head, 0, 0, len(entries))
        for k, (scan, start, length) in enumerate(entries):
            at = 8 + k * ENTRY_SIZE
            struct.pack_into("<IIQQ", head, at, scan.meas_id, 5000 + k, start, length)
            name = spec.phi.name.encode()[:63]
            head[at + 24:at + 24 + len(name)] = name
            prot = scan.protocol.encode()[:63]
            head[at + 88:at + 88 + len(prot)] = prot
        # a stale entry past the count, as a reused header might hold
        at = 8 + len(entries) * ENTRY_SIZE
        head[at + 24:at + 24 + len(spec.phi.name)] = spec.phi.name.encode()
        f.seek(0)
        f.write(head)
    return path
