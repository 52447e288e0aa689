"""Finding plugins: entry points, misspelled hooks, the load filter, site files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from medscrub import hookimpl
from medscrub.plugins import PluginError, collect, make_plugin_manager, plugin_infos


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """A really importable plugin with a dist-info, as pip would install it."""
    site = tmp_path / "site"
    (site / "medscrub_tiny").mkdir(parents=True)
    (site / "medscrub_tiny" / "__init__.py").write_text(textwrap.dedent("""
        from medscrub import Format, hookimpl

        @hookimpl
        def medscrub_register_formats(register):
            register(Format("tiny", "a tiny format"))
    """))
    info = site / "medscrub_tiny-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: medscrub-tiny\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[medscrub]\ntiny = medscrub_tiny\n")
    monkeypatch.syspath_prepend(str(site))
    return "tiny"


def test_entry_point_plugin_is_found(fake_distribution, monkeypatch):
    monkeypatch.delenv("MEDSCRUB_LOAD_PLUGINS", raising=False)
    pm = make_plugin_manager()
    assert pm.get_plugin("tiny") is not None
    formats = [f.name for f in collect(pm, "medscrub_register_formats")]
    assert "tiny" in formats
    info = next(i for i in plugin_infos(pm) if i["name"] == "tiny")
    assert info["distribution"] == "medscrub-tiny" and info["version"] == "1.2.3"
    assert info["hooks"] == ["medscrub_register_formats"]


def test_load_filter_limits_installed_plugins(fake_distribution, monkeypatch):
    monkeypatch.setenv("MEDSCRUB_LOAD_PLUGINS", "")
    assert make_plugin_manager().get_plugin("tiny") is None
    monkeypatch.setenv("MEDSCRUB_LOAD_PLUGINS", "medscrub-tiny")
    assert make_plugin_manager().get_plugin("tiny") is not None
    # builtins always load
    assert make_plugin_manager(allowed=()).get_plugin("medscrub.executors") is not None


def test_misspelled_hook_is_an_error():
    class Typo:
        @hookimpl
        def medscrub_reed(self, item, context):  # not a hook
            return None

    with pytest.raises(PluginError, match="medscrub_reed"):
        make_plugin_manager(extra=[Typo()], allowed=())


def test_wrong_hook_argument_is_an_error():
    class WrongArgs:
        @hookimpl
        def medscrub_claim(self, path, context, extra):
            return None

    with pytest.raises(Exception, match="extra"):
        make_plugin_manager(extra=[WrongArgs()], allowed=())


def test_plugins_do_not_leak_between_managers():
    class Fake:
        @hookimpl
        def medscrub_register_formats(self, register):
            from medscrub import Format

            register(Format("fake", "x"))

    with_fake = make_plugin_manager(extra=[Fake()], allowed=())
    without = make_plugin_manager(allowed=())
    assert [f.name for f in collect(with_fake, "medscrub_register_formats")] == ["fake"]
    assert collect(without, "medscrub_register_formats") == []


def test_site_file_registers_as_plugin(tmp_path):
    site = tmp_path / "rules.py"
    site.write_text(textwrap.dedent("""
        from medscrub import RuleSet, Rule, SITE, hookimpl

        @hookimpl
        def medscrub_metadata_rules(register, context):
            register(RuleSet("my-site", (Rule("note", "remove"),), layer=SITE))
    """))
    pm = make_plugin_manager(site_files=[site], allowed=())
    assert any(name.startswith("site:rules.py") for name, _ in pm.list_name_plugin())
    sets = collect(pm, "medscrub_metadata_rules", context=None)
    assert sets[0].name == "my-site"


def test_broken_site_file_names_itself(tmp_path):
    site = tmp_path / "broken.py"
    site.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match="broken.py failed: RuntimeError: boom"):
        make_plugin_manager(site_files=[site], allowed=())
    with pytest.raises(PluginError, match="does not exist"):
        make_plugin_manager(site_files=[tmp_path / "missing.py"], allowed=())


def test_every_hook_is_documented():
    """Like datasette: a hook missing from docs/plugins.md fails the suite."""
    from medscrub import hookspecs

    docs = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("medscrub_")]
    assert len(hooks) >= 12
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, f"{name} has no docstring"
        assert f"`{name}" in docs, f"{name} is not documented in docs/plugins.md"
