"""The HTML QA report, rendered by a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import toyformat

from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def cleaned(toy_tree, tmp_path, secret):
    (toy_tree / "bad.toy").write_bytes(b"broken")
    recipe = tmp_path / "r.toml"
    recipe.write_text("[run]\nreport = true\n")
    config = RunConfig(recipe, secret, toy_tree, tmp_path / "out", cleaners=("erase-text",),
                       extra_plugins=(toyformat.plugin, toyformat.cleaner), plugins=())
    summary = run_batch(config, workers=1)
    assert summary.count("done") == 3 and summary.count("failed") == 1
    return tmp_path / "out", summary


def test_pixel_changes_are_recorded_with_pictures(cleaned):
    out, summary = cleaned
    done = [r for r in summary.results if r.status == "done"]
    assert all(r.actions["pixels"] == 1 for r in done)
    for r in done:
        (preview,) = r.previews
        assert set(preview) == {"title", "after"}  # no "before" unless internal previews were asked for
        assert (out / ".medscrub" / preview["after"]).read_bytes().startswith(b"\x89PNG")
    assert toyformat.parse((out / "a.toy").read_bytes())[1] == bytes(len(b"\x00\x01payload"))


def test_report_shows_no_original_names(cleaned):
    out, summary = cleaned
    assert summary.report == out / ".medscrub" / "report" / "index.html"
    page = summary.report.read_text()
    assert "bad.toy" not in page and "input #" in page  # the failed input is named by its manifest line
    assert "not a toy file" in page
    assert "a.toy" in page  # outputs passed the leak check; they may be named
    assert "before" not in re.sub(r"<p class=note>.*?</p>", "", page)
    internal = build_report(out, internal=True).read_text()
    assert "bad.toy" in internal and "Do not share" in internal


def test_report_is_paged(toy_tree, tmp_path, secret, monkeypatch):
    import medscrub.report

    monkeypatch.setattr(medscrub.report, "PAGE_SIZE", 2)
    config = RunConfig(None, secret, toy_tree, tmp_path / "out", extra_plugins=(toyformat.plugin,), plugins=())
    run_batch(config)
    index = build_report(tmp_path / "out")
    assert sorted(p.name for p in index.parent.glob("items-*.html")) == ["items-1.html", "items-2.html"]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (CI installs it)")
def test_report_renders_in_chromium_with_every_picture(cleaned, tmp_path):
    out, summary = cleaned
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--virtual-time-budget=5000", "--dump-dom", summary.report.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert "<h1>medscrub report</h1>" in dom
    loaded, total = map(int, re.search(r'data-images="(\d+)/(\d+)"', dom).groups())
    assert total == 3 and loaded == total
