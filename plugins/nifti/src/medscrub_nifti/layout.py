"""Where a file sits in a BIDS dataset, whose it is, and its relabelled name.

Every item is processed alone, in any worker, so everything here is derived
from the input tree itself: the BIDS root is the nearest folder with a
``dataset_description.json``; the patient behind ``sub-<label>`` is read
from that subject's sidecars.  Results are cached per run context.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from medscrub import BadInput

from .options import NiftiOptions

LABEL = r"[A-Za-z0-9]+"
# sub-/ses- entities wherever BIDS writes them: folder names, file names,
# relative paths and BIDS URIs in sidecars and TSVs.
ENTITY = re.compile(r"(?<![A-Za-z0-9])(sub|ses)-(" + LABEL + r")(?![A-Za-z0-9])")
SUBJECT_DIR = re.compile(r"^sub-(" + LABEL + r")$")
SESSION_DIR = re.compile(r"^ses-(" + LABEL + r")$")
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".hdr.gz", ".hdr", ".img.gz", ".img")
SIDECAR_PATIENT_KEYS = ("PatientID", "PatientName")


def strip_suffix(name: str) -> tuple[str, str]:
    """(stem, extension) with the double extensions BIDS uses kept whole."""
    lower = name.lower()
    for suffix in (*IMAGE_SUFFIXES, ".tsv.gz", ".json", ".tsv", ".bval", ".bvec"):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if stem else (name, "")


def ancestors(path: Path, top: Path) -> list[Path]:
    """Folders from ``path``'s parent up to ``top`` (inclusive), nearest first."""
    out = []
    for folder in path.parents:
        out.append(folder)
        if folder == top:
            break
    return out


@dataclass
class Subject:
    """What the sidecars of one subject say about the patient."""

    label: str
    key: str  # the patient key: PatientID, else PatientName, else the label
    ids_by_sidecar: dict[Path, str] = field(default_factory=dict)
    distinct_ids: tuple[str, ...] = ()


class Layout:
    """The BIDS view of one run's input, cached per run context."""

    def __init__(self, input_root: Path, options: NiftiOptions, naming: str) -> None:
        self.input_root = Path(input_root).absolute()
        self.base = self.input_root if self.input_root.is_dir() else self.input_root.parent
        self.options = options
        relabel = options.relabel_subjects
        self.relabel_subjects = (naming == "pseudonymous") if relabel is None else relabel
        sessions = options.relabel_sessions
        self.relabel_sessions = self.relabel_subjects if sessions is None else sessions
        self._roots: dict[Path, Path | None] = {}
        self._subjects: dict[tuple[Path, str], Subject] = {}
        self._top: Path | None = None

    # -- the dataset -------------------------------------------------------
    @property
    def top(self) -> Path:
        """The outermost folder whose subject folders may be read: the
        outermost BIDS root around the input, or the input folder."""
        if self._top is None:
            top = self.base
            for folder in (self.base, *self.base.parents):
                if (folder / "dataset_description.json").is_file():
                    top = folder
            self._top = top
        return self._top

    def root_of(self, path: Path) -> Path | None:
        """The BIDS root of a file: the nearest folder with a
        dataset_description.json, else the folder above its outermost
        ``sub-*`` folder; None outside any dataset."""
        folder = path.parent
        if folder in self._roots:
            return self._roots[folder]
        root = None
        for candidate in (folder, *folder.parents):
            if (candidate / "dataset_description.json").is_file():
                root = candidate
                break
        if root is None:
            for candidate in ancestors(path, self.top):
                if SUBJECT_DIR.match(candidate.name):
                    root = candidate.parent
        self._roots[folder] = root
        return root

    def subject_of(self, path: Path) -> str | None:
        """The subject label of a file: its nearest ``sub-*`` folder, else its name."""
        root = self.root_of(path)
        for folder in path.parents:
            if root is not None and folder == root:
                break
            m = SUBJECT_DIR.match(folder.name)
            if m:
                return m.group(1)
        m = re.match(r"^sub-(" + LABEL + r")(?:_|$)", path.name)
        return m.group(1) if m else None

    def session_of(self, path: Path) -> str | None:
        for folder in path.parents:
            m = SESSION_DIR.match(folder.name)
            if m:
                return m.group(1)
            if SUBJECT_DIR.match(folder.name):
                break
        m = re.search(r"(?:^|_)ses-(" + LABEL + r")(?:_|$)", strip_suffix(path.name)[0])
        return m.group(1) if m else None

    # -- the patient ---------------------------------------------------------
    def subject(self, path: Path, label: str) -> Subject:
        """The patient behind ``sub-<label>``, as seen from ``path``."""
        root = self.root_of(path) or path.parent
        cache_key = (root, label)
        if cache_key in self._subjects:
            return self._subjects[cache_key]
        ids: dict[Path, str] = {}
        if self.options.patient_key == "auto":
            # The outermost dataset first, so that raw data and its
            # derivatives agree on one patient.
            for folder in reversed(ancestors(path, self.top)):
                subject_dir = folder / f"sub-{label}"
                if subject_dir.is_dir():
                    for sidecar in sorted(subject_dir.rglob("*.json")):
                        found = sidecar_patient(sidecar)
                        if found:
                            ids[sidecar] = found
        distinct = tuple(dict.fromkeys(ids.values()))
        subject = Subject(label, distinct[0] if distinct else label, ids, distinct)
        self._subjects[cache_key] = subject
        return subject

    def patient_key_for(self, path: Path, own: str | None = None) -> str | None:
        """The key for the dates of ``path``: its own (or its sidecar's)
        PatientID, else its subject's key; None outside any subject."""
        if self.options.patient_key == "auto":
            if own:
                return own
            stem, _ = strip_suffix(path.name)
            sidecar = path.with_name(stem + ".json")
            if sidecar != path and sidecar.is_file():
                found = sidecar_patient(sidecar)
                if found:
                    return found
        label = self.subject_of(path)
        if label is None:
            return None
        return self.subject(path, label).key

    # -- names ---------------------------------------------------------------
    def relabel(self, text: str, where: Path, context, subject_hint: str | None = None) -> str:
        """``text`` with every ``sub-``/``ses-`` label replaced by its pseudonym.

        A session label belongs to the nearest subject label before it in
        the text, else to ``subject_hint`` (the file's own subject).
        """
        if not self.relabel_subjects and not self.relabel_sessions:
            return text
        current = subject_hint

        def swap(m: re.Match) -> str:
            nonlocal current
            entity, label = m.group(1), m.group(2)
            if entity == "sub":
                current = label
                return f"sub-{self.subject_pseudonym(where, label, context)}" if self.relabel_subjects else m.group(0)
            if not self.relabel_sessions or current is None:
                return m.group(0)
            return f"ses-{self.session_pseudonym(where, current, label, context)}"

        return ENTITY.sub(swap, text)

    def subject_pseudonym(self, where: Path, label: str, context) -> str:
        new = context.patient_pseudonym(self.subject(where, label).key)
        if not re.fullmatch(LABEL, new):
            raise BadInput("the patient pseudonym is not a valid BIDS label (letters and digits only)")
        return new

    def session_pseudonym(self, where: Path, subject: str, session: str, context) -> str:
        # Keyed per subject: a session label that is a date must not tie two subjects together.
        key = self.subject(where, subject).key
        return context.pseudonyms.pseudonym("bids-session", f"{key}\0{session}", length=8)

    def output_name(self, path: Path, relative: str, context) -> str | None:
        """The relabelled relative path of a dataset file, or a path of
        pseudonyms for an image outside any dataset."""
        if self.root_of(path) is not None:
            if not self.relabel_subjects and not self.relabel_sessions:
                return None
            return self.relabel(relative, path, context, self.subject_of(path))
        parts = PurePosixPath(relative).parts
        out = []
        for n, part in enumerate(parts):
            stem, ext = strip_suffix(part) if n == len(parts) - 1 else (part, "")
            out.append(context.pseudonyms.pseudonym("path", stem, length=12) + ext.lower())
        return "/".join(out)

    def remember_labels(self, asset, path: Path) -> None:
        """Original labels that relabelling removes, for the leak check."""
        subject = self.subject_of(path)
        if subject is None:
            return
        if self.relabel_subjects:
            asset.remember("label", f"sub-{subject}")
        session = self.session_of(path)
        if session is not None and self.relabel_sessions:
            asset.remember("label", f"ses-{session}")


def sidecar_patient(path: Path) -> str | None:
    """The PatientID (else PatientName) a sidecar holds, reading little."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if b'"Patient' not in raw:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    for key in SIDECAR_PATIENT_KEYS:
        value = data.get(key)
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()
    return None


def layout_for(context) -> Layout:
    """The run's layout, made once per run context (and per process)."""
    cache = context.cache("nifti")
    found = cache.get("layout")
    if found is None:
        options = context.options("nifti") or NiftiOptions()
        found = cache["layout"] = Layout(context.input_root, options, context.recipe.output.naming)
    return found
