"""What a plugin sees of a run: :class:`RunContext`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from .model import Cleaner, MedscrubError
from .plugins import allowed_from_env, collect, make_plugin_manager
from .pseudonyms import Pseudonymizer, Secret, read_lookup
from .recipe import Recipe, load_recipe, site_files
from .rules import RECIPE, RuleBook, RuleSet


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def recipe_sections(pm: pluggy.PluginManager) -> dict[str, type]:
    return dict(collect(pm, "medscrub_recipe_sections"))


@dataclass
class RunConfig:
    """Everything a worker needs to rebuild a run's context; it pickles."""

    recipe_path: Path | None
    secret: Secret
    input_root: Path
    output_root: Path
    cleaners: tuple[str, ...] = ()
    extra_plugins: tuple[Any, ...] = field(default=())  # tests register fakes through this
    # installed plugins to load (None: all); resolved in the parent so every
    # worker loads the same ones whatever its environment
    plugins: tuple[str, ...] | None = field(default_factory=allowed_from_env)
    # CPU cores each worker process may use for its own threads (a network's
    # inference); set by the executor, 0: every core of the machine
    cores_per_worker: int = 0


class RunContext:
    """The run as a plugin sees it: recipe, pseudonyms, options and roots."""

    def __init__(self, config: RunConfig, pm: pluggy.PluginManager | None = None, recipe: Recipe | None = None) -> None:
        self.config = config
        self._caches: dict[str, dict] = {}
        if pm is None:
            # The recipe names site files, and the plugins validate the recipe.
            site = site_files(config.recipe_path)
            pm = make_plugin_manager(site_files=site, extra=config.extra_plugins, allowed=config.plugins)
        self.pm = pm
        self.recipe = recipe or load_recipe(config.recipe_path, recipe_sections(pm))
        self.input_root = config.input_root
        self.output_root = config.output_root
        # Threads a plugin's numeric library may start in this process: the
        # executor's share of the machine, so that workers do not oversubscribe it.
        self.cores = config.cores_per_worker or available_cores()
        p = self.recipe.pseudonyms
        lookup = read_lookup(p.lookup) if p.patient == "lookup" and p.lookup else None
        self.pseudonyms = Pseudonymizer(
            config.secret,
            shift_min_days=self.recipe.dates.shift_min_days,
            shift_max_days=self.recipe.dates.shift_max_days,
            lookup=lookup,
            record=self.recipe.output.reidentification_map is not None,
        )
        self.rules = RuleBook()
        for ruleset in collect(pm, "medscrub_metadata_rules", context=self):
            self.rules.add(ruleset)
        if self.recipe.rules:
            self.rules.add(RuleSet("recipe", tuple(r.rule() for r in self.recipe.rules), layer=RECIPE))
        available = {c.name: c for c in collect(pm, "medscrub_register_cleaners")}
        wanted = list(dict.fromkeys([*self.recipe.run.cleaners, *config.cleaners]))
        missing = [name for name in wanted if name not in available]
        if missing:
            have = ", ".join(sorted(available)) or "none"
            raise MedscrubError(
                f"pixel cleaner {', '.join(missing)} is not installed (installed: {have}); "
                f"install the plugin that provides it, such as medscrub-{'ocr' if 'erase-text' in missing else 'deface'}"
            )
        self.cleaners: list[Cleaner] = [available[name] for name in wanted]

    @property
    def wants_volumes(self) -> bool:
        """Does a cleaner of this run work on 3D volumes?  Format plugins then
        group the files of one volume into one item (``medscrub_group_key``)."""
        return any(c.volumes for c in self.cleaners)

    def cache(self, namespace: str) -> dict:
        """A dict that lives as long as this context (one run in one process),
        for what a plugin computes once per run, such as a dataset's layout."""
        return self._caches.setdefault(namespace, {})

    def options(self, section: str) -> Any:
        """The validated recipe section a plugin registered, such as ``"dicom"``."""
        return self.recipe.section(section)

    @property
    def date_policy(self) -> str:
        return self.recipe.dates.policy

    def patient_pseudonym(self, original: str) -> str:
        """The patient's pseudonym, the same in every format and file."""
        p = self.recipe.pseudonyms
        table = self.pseudonyms.lookup.get("patient")
        if p.patient == "lookup" and p.missing == "fail" and (table is None or original not in table):
            raise MedscrubError("the patient is not in the pseudonym lookup table (pseudonyms.missing = 'fail')")
        return self.pseudonyms.pseudonym("patient", original, prefix=p.prefix)

    def check_rules(self) -> list[str]:
        return [m for msgs in self.pm.hook.medscrub_check_rules(rules=self.rules, context=self) if msgs for m in msgs]
