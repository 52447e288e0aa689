from __future__ import annotations

from pathlib import Path

import pytest
import toyformat

from medscrub.context import RunConfig
from medscrub.pipeline import run_batch


@pytest.fixture
def toy_tree(tmp_path: Path) -> Path:
    """An input tree of toy files, two patients, one nested folder."""
    root = tmp_path / "in"
    toyformat.write_toy(root / "a.toy", {"name": "Alice Example", "id": "PAT000123", "date": "2020-03-04", "kind": "scan"})
    toyformat.write_toy(root / "sub" / "b.toy", {"name": "Bob Sample", "id": "PAT000456", "date": "2021-05-06"})
    toyformat.write_toy(root / "sub" / "c.toy", {"name": "Alice Example", "id": "PAT000123", "date": "2020-03-10"})
    return root


@pytest.fixture
def run_toy(tmp_path: Path, secret):
    """Run a batch with only the toy plugin loaded; returns the summary."""

    def run(input_root: Path, output_root: Path | None = None, recipe: Path | None = None, workers: int = 1, **kw):
        config = RunConfig(
            recipe, kw.pop("secret", secret), input_root, output_root or tmp_path / "out",
            extra_plugins=(toyformat.plugin,), plugins=(),
        )
        return run_batch(config, workers=workers, **kw)

    return run
