"""Metadata rules and how rule sets compose.

A rule pairs a *selector* (a string the format plugin understands: a DICOM
keyword, tag, tag pattern or private creator, a JSON key, a twix field) with
an action.  Rule sets come from the standard profile, installed plugins, site
``.py`` files and the recipe, and compose in that order: for one element, the
rule from the highest layer wins, and within a layer the last registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# Layers, lowest first.  Gaps leave room for plugins that need an order of
# their own (a plugin may pass any integer).
PROFILE = 0
PLUGIN = 100
SITE = 200
RECIPE = 300

RULE_ACTIONS = ("keep", "remove", "empty", "replace", "hash", "shift", "pseudonymise")


@dataclass(frozen=True)
class Rule:
    match: str
    action: str
    value: str | None = None  # for replace
    format: str | None = None  # None: every format that understands the selector

    def __post_init__(self) -> None:
        if self.action not in RULE_ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; use one of {', '.join(RULE_ACTIONS)}")
        if self.action == "replace" and self.value is None:
            raise ValueError(f"rule for {self.match!r}: action 'replace' needs a value")


@dataclass(frozen=True)
class RuleSet:
    name: str
    rules: tuple[Rule, ...]
    layer: int = PLUGIN
    formats: tuple[str, ...] = ()  # empty: any format

    def applies_to(self, format: str) -> bool:
        return not self.formats or format in self.formats


@dataclass
class RuleBook:
    """Every rule set of a run, ordered so that later ones override earlier ones."""

    sets: list[RuleSet] = field(default_factory=list)

    def add(self, ruleset: RuleSet) -> None:
        self.sets.append(ruleset)
        # sorted() is stable: registration order stays within a layer
        self.sets = sorted(self.sets, key=lambda s: s.layer)

    def for_format(self, format: str) -> Iterator[tuple[RuleSet, Rule]]:
        """Each (rule set, rule) that may apply to ``format``, lowest layer first."""
        for ruleset in self.sets:
            if ruleset.applies_to(format):
                for rule in ruleset.rules:
                    if rule.format in (None, format):
                        yield ruleset, rule

    def names(self) -> list[str]:
        return [s.name for s in self.sets]
