"""The run's record in the output folder: a manifest line per item and the
state that makes a rerun resume.

The ``.medscrub`` folder holds original file names: keep it with the data
office, do not share it with the de-identified data.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from .model import ItemResult, MedscrubError
from .output import STATE_DIR

MANIFEST = "manifest.jsonl"
FLUSH_SECONDS = 0.5
STATE = "state.json"
README = """\
This folder is medscrub's record of the run: manifest.jsonl lists every input
with its status, output and actions; state.json lets a rerun resume.
It names the ORIGINAL input files: keep it, do not share it with the data.
"""


class Manifest:
    def __init__(self, output_root: Path) -> None:
        self.folder = Path(output_root) / STATE_DIR
        self.path = self.folder / MANIFEST
        self._file = None
        self._flushed = 0.0

    def previous(self) -> dict[str, dict]:
        """The last record of each item from earlier runs into this folder."""
        records: dict[str, dict] = {}
        if not self.path.exists():
            return records
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the tail of a killed run
                records[record["id"]] = record
        return records

    def open(self, fingerprint: dict) -> None:
        """Start appending; refuse an output folder made with another recipe or secret."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "README.txt").write_text(README)
        state_path = self.folder / STATE
        if state_path.exists():
            old = json.loads(state_path.read_text())
            if old.get("fingerprint") != fingerprint:
                raise MedscrubError(
                    f"{self.folder.parent} was written with another recipe or secret; "
                    "use a new output folder (mixing them would break consistency)"
                )
        else:
            state_path.write_text(json.dumps({"fingerprint": fingerprint}, indent=1) + "\n")
        self._file = self.path.open("a", encoding="utf-8")

    def append(self, result: ItemResult) -> None:
        record = dict(vars(result))  # plain values: no deep copy needed
        record.pop("mappings", None)  # originals go only to the re-identification map
        assert self._file is not None
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        # Flushed at most twice a second: a killed run loses at most the
        # last half second of lines, and those items are simply done again
        # (their outputs are deterministic, so a rerun accepts them).
        now = time.monotonic()
        if now - self._flushed >= FLUSH_SECONDS:
            self._file.flush()
            self._flushed = now

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


def recipe_fingerprint(recipe_text: str, secret_fingerprint: str) -> dict:
    return {
        "recipe_sha256": hashlib.sha256(recipe_text.encode()).hexdigest(),
        "secret": secret_fingerprint,
    }
