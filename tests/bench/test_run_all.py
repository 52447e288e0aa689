"""bench/run_all.py merges the reports that real bench runs write.

The benches run on tiny generated inputs here: their numbers are not looked
at, only that every row reaches the one table with its bench, its value and
its ratio to the right reference."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch):
    """Import a module of bench/ by name, as its scripts import each other."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module


@pytest.fixture
def reports(bench, tmp_path) -> list[dict]:
    """The reports of real wsi and twix runs on tiny generated files."""
    pytest.importorskip("medscrub_wsi")
    pytest.importorskip("medscrub_twix")
    out = []
    for name, size in (("wsi", ["--gb", "0.002"]), ("twix", ["--size", "0.002"])):
        target = tmp_path / f"{name}.json"
        assert bench(f"bench_{name}").main([*size, "--dir", str(tmp_path), "--json", str(target)]) == 0
        out.append(json.loads(target.read_text()))
    return out


def test_the_table_holds_every_row_with_its_ratio(bench, reports):
    run_all, benchlib = bench("run_all"), bench("benchlib")
    table, lines = run_all.summary(reports)

    assert [(r["bench"], r["tool"], r["metric"]) for r in table] == [
        (rep["bench"], r["tool"], r["metric"]) for rep in reports for r in rep["rows"]]
    wsi = [r for r in table if r["bench"] == "wsi"]
    twix = [r for r in table if r["bench"] == "twix"]
    assert {r["reference"] for r in wsi if r["metric"] == "whole run"} == {"plain copy + fsync"}
    assert {r["reference"] for r in wsi if r["metric"] == "edit only, no fsync"} == {"plain copy"}
    assert {r["reference"] for r in twix} == {"plain copy"}
    for rows in (wsi, twix):
        for r in rows:
            assert r["value"] is not None and r["value"] > 0, r
            ref = next(x for x in rows if x["tool"] == r["reference"] and x["metric"] == r["metric"])
            assert r["ratio"] == pytest.approx(r["value"] / ref["value"])
    assert any(line.startswith("wsi inputs: a generated SVS-like BigTIFF") for line in lines)
    assert any(line.startswith("twix inputs: a generated VD twix file") for line in lines)

    text = benchlib.text_table(table).splitlines()
    assert text[0].split() == list(benchlib.COLUMNS)
    assert len(text) == 2 + len(table)
    for line, r in zip(text[2:], table, strict=True):
        assert line.split()[0] == r["bench"] and r["tool"] in line and f"{r['ratio']:.2f}x" in line
    markdown = benchlib.markdown_table(table).splitlines()
    assert len(markdown) == 2 + len(table)
    assert all(line.count(" | ") == len(benchlib.COLUMNS) - 1 for line in markdown[2:])


def test_a_bench_that_fails_is_one_row_with_its_last_line(bench, tmp_path, capsys):
    run_all = bench("run_all")
    script = tmp_path / "bench_broken.py"
    script.write_text('import sys\nprint("building the corpus ...")\nsys.exit("cannot write the corpus: disk full")\n')

    report = run_all.run_script(script, [])
    table, _ = run_all.summary([report])

    assert report["failed"] == "exit 1: cannot write the corpus: disk full"
    assert [(r["bench"], r["value"], r["note"]) for r in table] == [
        ("broken", None, "exit 1: cannot write the corpus: disk full")]
    assert "building the corpus ..." in capsys.readouterr().err  # its output is passed on


def test_a_missing_peer_is_named(bench):
    benchlib = bench("benchlib")
    assert benchlib.not_installed("json", "no_such_peer_module") == "not installed: no_such_peer_module"
    assert benchlib.not_installed("json") == ""
