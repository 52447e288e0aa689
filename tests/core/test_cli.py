"""The command line: exit codes, messages, recipe and secret commands, verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import toyformat
from typer.testing import CliRunner

from medscrub.cli import app

SUPPORT = Path(__file__).parents[1] / "support"


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setenv("MEDSCRUB_LOAD_PLUGINS", "")  # only the toy site file
    monkeypatch.setenv("MEDSCRUB_SECRET", "cli-secret-0123456789abcdef")
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text(f'[site]\nfiles = ["{SUPPORT / "toy_site.py"}"]\n')
    return path


def test_run_then_verify(cli, toy_tree, tmp_path, recipe):
    out = tmp_path / "out"
    result = cli("run", toy_tree, out, "--recipe", recipe, "--workers", 2)
    assert result.exit_code == 0, result.output
    assert "3 done" in result.output
    result = cli("verify", out, "--against", toy_tree, "--recipe", recipe)
    assert result.exit_code == 0, result.output
    assert "3 output file(s) checked, 0 finding(s)" in result.output
    # plant a leak into one output: verify must find it without printing it
    header, payload = toyformat.parse((out / "a.toy").read_bytes())
    header["comment"] = "seen Alice Example today"
    toyformat.write_toy(out / "a.toy", header, payload)
    (out / "stray.bin").write_bytes(b"?")
    result = cli("verify", out, "--against", toy_tree, "--recipe", recipe, "--json")
    assert result.exit_code == 1
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"file": "a.toy", "kind": "name"}.items() <= findings[0].items()
    assert any(f["file"] == "stray.bin" for f in findings)
    assert "Alice Example" not in result.output


def test_some_failures_exit_1(cli, toy_tree, tmp_path, recipe):
    (toy_tree / "bad.toy").write_bytes(b"nope")
    result = cli("run", toy_tree, tmp_path / "out", "--recipe", recipe, "-w", 1)
    assert result.exit_code == 1
    assert "failed: bad.toy: not a toy file" in result.output


def test_usage_errors_exit_2(cli, toy_tree, tmp_path, recipe, monkeypatch):
    result = cli("run", toy_tree, tmp_path / "out", "--recipe", recipe, "--erase-text")
    assert result.exit_code == 2
    assert "Error: pixel cleaner erase-text is not installed" in result.output
    result = cli("run", toy_tree, toy_tree / "out", "--recipe", recipe)
    assert result.exit_code == 2 and "outside the input" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[dates]\npolicy = "blur"\n')
    result = cli("run", toy_tree, tmp_path / "out", "--recipe", bad)
    assert result.exit_code == 2 and "bad.toml: dates.policy" in result.output
    monkeypatch.delenv("MEDSCRUB_SECRET")
    result = cli("run", toy_tree, tmp_path / "out", "--recipe", recipe)
    assert result.exit_code == 2 and "Error: no secret" in result.output


def test_new_secret_is_written_outside_the_output(cli, toy_tree, tmp_path, recipe, monkeypatch):
    monkeypatch.delenv("MEDSCRUB_SECRET")
    out = tmp_path / "out"
    result = cli("run", toy_tree, out, "--recipe", recipe, "--new-secret", out / "key")
    assert result.exit_code == 2 and "must not be inside" in result.output
    key = tmp_path / "keys" / "medscrub.key"
    result = cli("run", toy_tree, out, "--recipe", recipe, "--new-secret", key)
    assert result.exit_code == 0, result.output
    assert f"written to {key}" in result.output
    secret = key.read_text().strip()
    for path in out.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()


def test_recipe_init_and_check(cli, tmp_path):
    path = tmp_path / "medscrub.toml"
    assert cli("recipe", "init", path).exit_code == 0
    assert cli("recipe", "init", path).exit_code == 2  # never overwrites
    result = cli("recipe", "check", path)
    assert result.exit_code == 0 and "OK" in result.output
    path.write_text(path.read_text() + "\n[[rules]]\nmatch = 'x'\naction = 'burn'\n")
    result = cli("recipe", "check", path)
    assert result.exit_code == 2 and "rules.0.action" in result.output


def test_plugins_lists_builtins_and_site_plugins(cli):
    result = cli("plugins", "--json")
    data = json.loads(result.stdout)
    assert any(p["name"] == "medscrub.executors" for p in data["plugins"])
    assert cli("plugins").exit_code == 0


def test_help_has_examples(cli):
    for args in ([], ["run"], ["verify"]):
        result = cli(*args, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output
