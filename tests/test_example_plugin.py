"""The example site-rules plugin (examples/medscrub-site-example), registered
for one run: its rules sit above the DICOM profile."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("medscrub_dicom", reason="the example's rules are DICOM rules")

from pydicom.data import get_testdata_file  # noqa: E402

from medscrub.context import RunConfig  # noqa: E402
from medscrub.pipeline import run_batch  # noqa: E402

EXAMPLE = Path(__file__).parents[1] / "examples" / "medscrub-site-example" / "src" / "medscrub_site_example" / "__init__.py"


def load_example():
    spec = importlib.util.spec_from_file_location("medscrub_site_example_under_test", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_site_rules_override_the_profile(tmp_path, secret):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyDescription = "CT HEAD WITHOUT CONTRAST"
    ds.InstitutionName = "Saint Example Hospital"
    ds.private_block(0x0009, "EXAMPLE HOSPITAL", create=True).add_new(0x10, "LO", "WARD 7 EAST")
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "ct.dcm")

    def run(out, extra):
        config = RunConfig(None, secret, tmp_path / "in", tmp_path / out, extra_plugins=extra, plugins=("dicom",))
        summary = run_batch(config, workers=1)  # in this process: the example module need not be importable
        assert summary.exit_code == 0, [r.reason for r in summary.results]
        return pydicom.dcmread(tmp_path / out / "ct.dcm")

    plain = run("plain", ())
    assert "StudyDescription" not in plain  # the profile removes it
    site = run("site", (load_example(),))
    assert site.StudyDescription == "CT HEAD WITHOUT CONTRAST"
    assert site.InstitutionName == "Example Research Site"
    assert b"WARD 7 EAST" not in (tmp_path / "site" / "ct.dcm").read_bytes()
