"""Keyed pseudonyms, UIDs and date offsets shared by every plugin.

Everything is derived with HMAC-SHA256 from the project secret, so the same
patient gets the same pseudonym, UID and date offset in every file, run,
process and machine without any shared state.  The secret itself never leaves
this module: it is not pickled into manifests, logs or outputs.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .model import MedscrubError

MIN_SECRET_LENGTH = 16
DEFAULT_SECRET_ENV = "MEDSCRUB_SECRET"


class SecretError(MedscrubError):
    pass


@dataclass(frozen=True)
class Secret:
    """The project secret.  Its repr never shows the value."""

    value: bytes = field(repr=False)
    source: str = ""  # "env MEDSCRUB_SECRET", "file /path": where, never what

    def __post_init__(self) -> None:
        if len(self.value) < MIN_SECRET_LENGTH:
            raise SecretError(
                f"the secret from {self.source or 'its source'} is shorter than "
                f"{MIN_SECRET_LENGTH} characters; use `medscrub secret new FILE` for a strong one"
            )

    def __reduce__(self):  # pragma: no cover - exercised through pickling in workers
        return (Secret, (self.value, self.source))

    def fingerprint(self) -> str:
        """A short, non-reversible name of the secret, to tell two runs apart."""
        return hmac.new(self.value, b"medscrub-fingerprint", hashlib.sha256).hexdigest()[:12]


def load_secret(env: str | None = DEFAULT_SECRET_ENV, file: Path | None = None) -> Secret:
    """Read the secret from a key file (first) or an environment variable."""
    if file is not None:
        file = Path(file)
        try:
            value = file.read_bytes().strip()
        except OSError as e:
            raise SecretError(f"cannot read the secret file {file}: {e.strerror or e}") from None
        return Secret(value, f"file {file}")
    if env and os.environ.get(env):
        return Secret(os.environ[env].encode(), f"environment variable {env}")
    raise SecretError(
        f"no secret: set {env or DEFAULT_SECRET_ENV}, pass --secret-file FILE, "
        "or create one with --new-secret FILE (kept outside the output folder)"
    )


def new_secret_file(path: Path, forbidden: list[Path] = ()) -> Secret:
    """Write a new random secret to ``path`` (mode 0600) and return it."""
    path = Path(path).absolute()
    for folder in forbidden:
        folder = Path(folder).absolute()
        if path == folder or folder in path.parents:
            raise SecretError(f"the secret file {path} must not be inside {folder}")
    if path.exists():
        raise SecretError(f"{path} exists already; refusing to overwrite a secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value + b"\n")
    return Secret(value, f"file {path}")


_B32 = str.maketrans("", "", "=")


class Pseudonymizer:
    """The keyed pseudonym service.

    ``kind`` separates name spaces: the same string gives different
    pseudonyms as a "patient" and as an "accession".
    """

    def __init__(
        self,
        secret: Secret,
        *,
        shift_min_days: int = 30,
        shift_max_days: int = 3650,
        lookup: dict[str, dict[str, str]] | None = None,
        record: bool = False,
    ) -> None:
        if not 0 <= shift_min_days <= shift_max_days:
            raise MedscrubError("date shift: need 0 <= min_days <= max_days")
        self._key = secret.value
        self.shift_min_days = shift_min_days
        self.shift_max_days = shift_max_days
        self.lookup = lookup or {}
        self.record = record
        self.issued: set[tuple[str, str, str]] = set()
        self._cache: dict[tuple, str] = {}

    def __getstate__(self):  # workers get the key; nothing prints it
        return self.__dict__.copy()

    def __repr__(self) -> str:
        return f"<Pseudonymizer shift={self.shift_min_days}..{self.shift_max_days} days>"

    # -- primitives ------------------------------------------------------
    def digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self._key, kind.encode() + b"\0" + value.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def _issue(self, kind: str, original: str, pseudonym: str) -> str:
        # every use is noted, not only the first: an item that fails drops its
        # notes, and the next item of the same patient must still bring them
        if self.record:
            self.issued.add((kind, original, pseudonym))
        return pseudonym

    # -- public ----------------------------------------------------------
    def pseudonym(self, kind: str, value: str, *, prefix: str = "", length: int = 12) -> str:
        """A stable pseudonym: ``prefix`` then ``length`` characters A-Z2-7.

        A value the data owner's lookup table lists gets the table's pseudonym.
        """
        key = (kind, value, prefix, length)
        if key in self._cache:
            return self._issue(kind, value, self._cache[key])
        table = self.lookup.get(kind)
        if table is not None and value in table:
            result = table[value]
        else:
            code = base64.b32encode(self.digest(kind, value)).decode().translate(_B32)
            result = prefix + code[:length]
        self._cache[key] = result
        return self._issue(kind, value, result)

    def hash(self, kind: str, value: str, length: int = 16) -> str:
        """A keyed hex hash, for values kept only to be compared."""
        return self.digest(kind, value).hex()[:length]

    def uid(self, uid: str, root: str = "2.25.") -> str:
        """A new UID for ``uid``: ``2.25.`` and a 128-bit UUID (version 8, RFC 9562)
        as a decimal number, at most 44 characters."""
        key = ("uid", uid)
        if key in self._cache:
            return self._issue("uid", uid, self._cache[key])
        raw = bytearray(self.digest("uid", uid.strip().rstrip("\0"))[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # version 8: custom, name-based
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        result = root + str(int.from_bytes(raw, "big"))
        self._cache[key] = result
        return self._issue("uid", uid, result)

    def date_offset(self, patient_key: str) -> int:
        """Days to add to every date of this patient: negative, keyed, stable."""
        span = self.shift_max_days - self.shift_min_days + 1
        n = int.from_bytes(self.digest("date-offset", patient_key)[:8], "big")
        return -(self.shift_min_days + n % span)

    def shift(self, value: dt.date | dt.datetime, patient_key: str):
        return value + dt.timedelta(days=self.date_offset(patient_key))

    def note(self, kind: str, original: str, pseudonym: str) -> None:
        """Record a replacement a plugin derived itself (keyed digits, a cut
        pseudonym) for the re-identification map, when the recipe keeps one."""
        self._issue(kind, original, pseudonym)

    def take_issued(self) -> list[tuple[str, str, str]]:
        out, self.issued = sorted(self.issued), set()
        return out


def read_lookup(path: Path) -> dict[str, dict[str, str]]:
    """Read a data owner's pseudonym table.

    CSV with a header: ``original,pseudonym`` (kind "patient") or
    ``kind,original,pseudonym``.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = set(reader.fieldnames or ())
            if not {"original", "pseudonym"} <= fields:
                raise MedscrubError(f"{path}: the lookup table needs the columns original,pseudonym (and optionally kind)")
            table: dict[str, dict[str, str]] = {}
            for n, row in enumerate(reader, start=2):
                kind = (row.get("kind") or "patient").strip()
                original, pseudo = (row["original"] or "").strip(), (row["pseudonym"] or "").strip()
                if not original or not pseudo:
                    raise MedscrubError(f"{path}:{n}: empty original or pseudonym")
                table.setdefault(kind, {})[original] = pseudo
            return table
    except OSError as e:
        raise MedscrubError(f"cannot read the lookup table {path}: {e.strerror or e}") from None


class ReidentificationMap:
    """The data owner's map from pseudonyms back to originals (SQLite, 0600).

    Only the process that runs the batch writes it; workers hand their new
    mappings back with their results.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        os.chmod(self.path, 0o600)
        self.db = sqlite3.connect(self.path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS map (kind TEXT NOT NULL, original TEXT NOT NULL,"
            " pseudonym TEXT NOT NULL, PRIMARY KEY (kind, original))"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS by_pseudonym ON map (pseudonym)")

    def add(self, rows: list[tuple[str, str, str]]) -> None:
        if rows:
            self.db.executemany("INSERT OR IGNORE INTO map VALUES (?, ?, ?)", rows)
            self.db.commit()

    def originals(self, pseudonym: str) -> list[tuple[str, str]]:
        return list(self.db.execute("SELECT kind, original FROM map WHERE pseudonym = ?", (pseudonym,)))

    def close(self) -> None:
        self.db.close()
