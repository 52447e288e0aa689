"""Fixtures for the NIfTI/BIDS plugin tests: builders on the path, a run helper."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("nibabel")
pytest.importorskip("medscrub_nifti")

HERE = Path(__file__).parent
# The builders and the test cleaner are imported by module name, here and in workers.
sys.path.insert(0, str(HERE))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))

from medscrub.context import RunConfig, RunContext  # noqa: E402
from medscrub.pipeline import run_batch  # noqa: E402
from medscrub.pseudonyms import Secret  # noqa: E402

SECRET = Secret(b"s" * 32, "test")


class Runner:
    """Runs the nifti plugin over a folder with a recipe written from text."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.count = 0

    def config(self, input_root: Path, recipe: str = "", cleaners=(), extra=()) -> RunConfig:
        self.count += 1
        recipe_path = self.tmp_path / f"recipe{self.count}.toml"
        recipe_path.write_text(recipe)
        output = self.tmp_path / f"out{self.count}"
        return RunConfig(recipe_path, SECRET, input_root, output, cleaners=tuple(cleaners),
                         extra_plugins=tuple(extra), plugins=("nifti",))

    def __call__(self, input_root: Path, recipe: str = "", cleaners=(), extra=(), workers: int = 1):
        config = self.config(input_root, recipe, cleaners, extra)
        summary = run_batch(config, workers=workers)
        return summary, config.output_root, RunContext(config)


@pytest.fixture
def run(tmp_path) -> Runner:
    return Runner(tmp_path)
