"""Fixtures for the twix plugin: synthetic VB and VD files and a run helper."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.pseudonyms import Secret
from medscrub_twix import synthetic

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "twix"
SECRET = Secret(b"twix-test-secret-0123456789", "test")


@pytest.fixture(autouse=True)
def only_twix(monkeypatch):
    # Other installed plugins must not take part: these tests are about twix.
    monkeypatch.setenv("MEDSCRUB_LOAD_PLUGINS", "twix")


@pytest.fixture
def phi() -> synthetic.Phi:
    return synthetic.Phi()


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


@pytest.fixture
def vd(inputs) -> Path:
    return synthetic.write(inputs / "meas_vd.dat")


@pytest.fixture
def vb(inputs) -> Path:
    return synthetic.write(inputs / "meas_vb.dat", synthetic.Twix(version="VB"))


@pytest.fixture
def real(inputs) -> Path:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is not here")
    for name in ("epi.dat", "gre.dat"):
        shutil.copyfile(REAL / name, inputs / name)
    return inputs


@pytest.fixture
def scrub(tmp_path):
    """Run medscrub on the input folder: (summary, output folder)."""

    def run(inputs: Path, recipe: str | None = None, name: str = "out"):
        recipe_path = None
        if recipe is not None:
            recipe_path = tmp_path / f"{name}.toml"
            recipe_path.write_text(recipe)
        out = tmp_path / name
        summary = run_batch(RunConfig(recipe_path, SECRET, inputs, out), workers=1)
        return summary, out

    return run
