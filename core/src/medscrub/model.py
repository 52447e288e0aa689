"""The values that pass between the core and the plugins.

Everything here is a plain dataclass so that it pickles across worker
processes and reads the same in every plugin.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The vocabulary of metadata actions shared by every format.  A format maps
# its own profile onto these words so that manifests and reports read alike.
ACTIONS = (
    "keep",  # left as it was
    "remove",  # the element is deleted
    "empty",  # the element stays with no value
    "replace",  # a dummy or a given value
    "pseudonymise",  # a keyed pseudonym (names, IDs)
    "uid",  # a keyed UID
    "hash",  # a keyed hash of the value
    "shift",  # a date or time moved by the patient's keyed offset
    "clean",  # identifying parts of a free-text value removed
    "pixels",  # pixel data changed by a cleaner
    "drop",  # a whole part (an image, a buffer) left out of the output
)


class MedscrubError(Exception):
    """An error with a message meant for the user, one line, no traceback."""


class UnsupportedInput(MedscrubError):
    """No installed plugin can read this input."""


class BadInput(MedscrubError):
    """The input is damaged or not what its name claims."""


@dataclass(frozen=True)
class Claim:
    """A reader's answer to "is this yours?".

    ``paths`` lists every file and folder that belong to the item, the path
    that was asked about first.  A DICOM file claims itself; an MRXS slide
    claims its ``.mrxs`` file and its data folder, so discovery does not offer
    the folder again.
    """

    format: str
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class Item:
    """One unit of work: what a worker reads, cleans and writes in one go."""

    id: str  # the primary path relative to the input root, POSIX form
    format: str
    paths: tuple[Path, ...]  # absolute
    root: Path  # the input root
    size: int = 0
    members: tuple[str, ...] = ()  # ids of every input merged into this item

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.members or (self.id,)

    @property
    def path(self) -> Path:
        return self.paths[0]

    @property
    def relative(self) -> Path:
        return Path(self.id)


@dataclass(frozen=True)
class Change:
    """One thing a rule or a cleaner did.  Never holds an original value."""

    action: str
    place: str  # "(0010,0010) PatientName", "Meas:tPatientName", "label image"
    source: str = ""  # the rule set or cleaner that decided it
    detail: str = ""  # a non-identifying note: "12 boxes", "+/- days"


@dataclass
class Asset:
    """An opened item.  ``data`` is the format's own object (a pydicom
    Dataset, a nibabel image, a parsed twix file) and only the plugins of that
    format look inside it."""

    item: Item
    format: str
    data: Any
    changes: list[Change] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    quarantine: str | None = None  # a reason: the asset is not written
    # Values a verifier looks for in the output; collected by the reader
    # before anything is changed.  Kind -> values ("name", "id", "date", ...).
    identifiers: dict[str, set[str]] = field(default_factory=dict)
    # Parts of the output a cleaner changed, for the QA report.
    previews: list[Preview] = field(default_factory=list)

    def record(self, action: str, place: str, source: str = "", detail: str = "") -> None:
        self.changes.append(Change(action, place, source, detail))

    def remember(self, kind: str, value: str) -> None:
        """Note an identifying value of the input for the leak check."""
        value = str(value).strip()
        if value:
            self.identifiers.setdefault(kind, set()).add(value)

    def forget(self, kind: str, value: str) -> None:
        """Stop looking for a value, such as one a site rule keeps on purpose."""
        self.identifiers.get(kind, set()).discard(str(value).strip())

    def action_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(c.action for c in self.changes).items()))


@dataclass(frozen=True)
class Preview:
    """A before/after picture a cleaner leaves for the QA report (PNG bytes)."""

    title: str
    before: bytes
    after: bytes


@dataclass(frozen=True)
class Finding:
    """Something identifying that a verifier found in an output.

    ``hint`` shows the value masked (``Jo*** (8 chars)``), never in full.
    """

    file: str
    place: str
    kind: str
    hint: str = ""

    def line(self) -> str:
        return f"{self.file}: {self.kind} in {self.place}" + (f" ({self.hint})" if self.hint else "")


def mask(value: str) -> str:
    """A hint of a value that does not disclose it."""
    value = str(value)
    if len(value) <= 4:
        return f"*** ({len(value)} chars)"
    return f"{value[:2]}*** ({len(value)} chars)"


@dataclass(frozen=True)
class Cleaner:
    """A pixel cleaner a plugin offers.

    ``applies(asset)`` says whether it has work on an asset; ``clean(asset,
    context)`` changes ``asset.data`` in place and returns what it changed.
    ``flag`` is the ``medscrub run`` option that switches it on.
    ``volumes`` says it works on 3D volumes through the volume hand-off, so
    format plugins group the files of one volume (a DICOM series) into one
    item when it runs.
    """

    name: str
    help: str
    applies: Callable[[Asset], bool]
    clean: Callable[[Asset, Any], list[Change]]
    flag: str | None = None
    volumes: bool = False


@dataclass(frozen=True)
class Format:
    """A format a plugin reads, for ``medscrub plugins`` and the docs."""

    name: str
    description: str
    plugin: str = ""


@dataclass
class ItemResult:
    """What happened to one item; one manifest line."""

    id: str
    format: str | None
    status: str  # done | failed | quarantined | unsupported
    members: list[str] = field(default_factory=list)  # every input of a grouped item
    output: list[str] = field(default_factory=list)  # relative to the output root
    output_bytes: list[int] = field(default_factory=list)  # their sizes, checked when a rerun resumes
    plugin: str | None = None
    actions: dict[str, int] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    findings: list[str] = field(default_factory=list)
    previews: list[dict[str, str]] = field(default_factory=list)  # pictures under OUT/.medscrub
    seconds: float = 0.0
    mappings: list[tuple[str, str, str]] = field(default_factory=list)  # for the re-identification map
