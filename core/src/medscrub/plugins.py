"""Finding plugins: entry points, the core's builtin plugins and site files.

A plugin manager is built per run (and per worker process), never kept as a
module global, so tests and runs do not leak plugins into each other.
``MEDSCRUB_LOAD_PLUGINS`` (comma-separated distribution or entry-point
names; empty for none) limits which installed plugins load.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pluggy

from . import hookspecs
from .model import MedscrubError

ENTRY_POINT_GROUP = "medscrub"
LOAD_ENV = "MEDSCRUB_LOAD_PLUGINS"

hookimpl = pluggy.HookimplMarker("medscrub")

# The core's own defaults, registered the same way as external plugins.
BUILTIN_PLUGINS = ("medscrub.executors",)


class PluginError(MedscrubError):
    pass


def allowed_from_env() -> tuple[str, ...] | None:
    """The plugins ``MEDSCRUB_LOAD_PLUGINS`` allows; None when it is unset (all)."""
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return tuple(name.strip() for name in value.split(",") if name.strip())


def make_plugin_manager(
    site_files: Iterable[Path] = (),
    extra: Iterable[object] = (),
    allowed: tuple[str, ...] | None | str = "env",
) -> pluggy.PluginManager:
    """A plugin manager with the builtins, installed plugins, site files and ``extra``.

    ``allowed`` names the installed plugins to load (entry-point or
    distribution names); None loads all, "env" asks ``MEDSCRUB_LOAD_PLUGINS``.
    """
    pm = pluggy.PluginManager("medscrub")
    pm.add_hookspecs(hookspecs)
    distributions: dict[str, tuple[str, str]] = {}
    pm.medscrub_distributions = distributions  # type: ignore[attr-defined]
    for name in BUILTIN_PLUGINS:
        module = importlib.import_module(name)
        pm.register(module, name=name)
    if allowed == "env":
        allowed = allowed_from_env()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else ""
        if allowed is not None and ep.name not in allowed and dist not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as e:  # a broken plugin must say which one it is
            raise PluginError(f"plugin {ep.name} ({ep.value}) failed to load: {e}") from e
        pm.register(plugin, name=ep.name)
        if ep.dist is not None:
            distributions[ep.name] = (ep.dist.name, ep.dist.version)
    for path in site_files:
        pm.register(load_site_file(Path(path)), name=f"site:{Path(path).name}")
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PluginError(f"plugin {e.plugin!r}: {e}") from None
    return pm


def load_site_file(path: Path) -> ModuleType:
    """Import a site's ``.py`` rules file as a plugin module."""
    if not path.is_file():
        raise PluginError(f"site rules file {path} does not exist")
    name = f"medscrub_site_{abs(hash(str(path.absolute())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"site rules file {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise PluginError(f"site rules file {path} failed: {type(e).__name__}: {e}") from e
    return module


def plugin_infos(pm: pluggy.PluginManager) -> list[dict]:
    """Name, version and hooks of each registered plugin."""
    dists: dict[str, tuple[str, str]] = getattr(pm, "medscrub_distributions", {})
    core = importlib.metadata.version("medscrub")
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np: np[0]):
        if plugin is None:
            continue
        dist, version = dists.get(name) or (("medscrub", core) if name in BUILTIN_PLUGINS else (None, None))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        infos.append({"name": name, "distribution": dist, "version": version, "hooks": hooks})
    return infos


def collect(pm: pluggy.PluginManager, hook: str, *args, **kwargs) -> list:
    """Call a ``register``-style hook and return everything it registered."""
    found: list = []
    getattr(pm.hook, hook)(*args, register=lambda *a: found.append(a[0] if len(a) == 1 else a), **kwargs)
    return found
