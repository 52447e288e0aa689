"""The recipe: one TOML file that says everything a run does.

The core validates its own sections; plugins register models for theirs
(``medscrub_recipe_sections``).  Errors name the file, the key and the
problem.  Relative paths in a recipe are relative to the recipe's folder.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .model import MedscrubError
from .rules import RULE_ACTIONS, Rule


class RecipeError(MedscrubError):
    pass


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecretSection(_Section):
    env: str = Field("MEDSCRUB_SECRET", description="environment variable that holds the secret")
    file: Path | None = Field(None, description="key file that holds the secret (wins over env)")


class DatesSection(_Section):
    policy: Literal["remove", "shift", "keep"] = "remove"
    shift_min_days: int = Field(30, ge=0)
    shift_max_days: int = Field(3650, ge=0)

    @model_validator(mode="after")
    def _range(self):
        if self.shift_min_days > self.shift_max_days:
            raise ValueError("shift_min_days must not exceed shift_max_days")
        return self


class PseudonymsSection(_Section):
    patient: Literal["keyed", "lookup"] = "keyed"
    prefix: str = Field("P", max_length=16, pattern=r"^[A-Za-z0-9_-]*$")
    lookup: Path | None = None
    missing: Literal["fail", "keyed"] = "fail"

    @model_validator(mode="after")
    def _lookup(self):
        if self.patient == "lookup" and self.lookup is None:
            raise ValueError("patient = 'lookup' needs lookup = 'table.csv'")
        return self


class OutputSection(_Section):
    naming: Literal["mirror", "pseudonymous"] = "mirror"
    reidentification_map: Path | None = Field(
        None, description="SQLite file (outside the output folder) for original -> pseudonym"
    )


class RunSection(_Section):
    verify: bool = Field(True, description="check every output for identifying values before it lands")
    deep_verify: bool = Field(False, description="also run the format verifiers on every output (slower)")
    cleaners: list[str] = Field(default_factory=list, description="pixel cleaners to run, in order")
    internal_previews: bool = Field(
        False, description="also keep the original ('before') pictures of pixel changes: they show PHI"
    )
    report: bool = Field(False, description="write the HTML QA report at the end of the run")


class SiteSection(_Section):
    files: list[Path] = Field(default_factory=list, description="site rule plugins as plain .py files")


class RuleEntry(_Section):
    match: str
    action: str
    value: str | None = None
    format: str | None = None

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        if v not in RULE_ACTIONS:
            raise ValueError(f"unknown action {v!r}; use one of {', '.join(RULE_ACTIONS)}")
        return v

    def rule(self) -> Rule:
        return Rule(self.match, self.action, self.value, self.format)


class Recipe(BaseModel):
    model_config = ConfigDict(extra="allow")

    secret: SecretSection = Field(default_factory=SecretSection)
    dates: DatesSection = Field(default_factory=DatesSection)
    pseudonyms: PseudonymsSection = Field(default_factory=PseudonymsSection)
    output: OutputSection = Field(default_factory=OutputSection)
    run: RunSection = Field(default_factory=RunSection)
    site: SiteSection = Field(default_factory=SiteSection)
    rules: list[RuleEntry] = Field(default_factory=list)

    # filled in by validate(): plugin sections as their plugins' models
    _plugin_sections: dict[str, BaseModel] = {}
    _source: str = "<defaults>"

    def section(self, name: str) -> BaseModel | None:
        return self._plugin_sections.get(name)

    @property
    def source(self) -> str:
        return self._source


CORE_SECTIONS = set(Recipe.model_fields)


def _format_errors(source: str, err: ValidationError, prefix: str = "") -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {key or '(top level)'}: {msg}")
    return "\n".join(lines)


def _resolve_paths(model: BaseModel, base: Path) -> None:
    for name, value in model:
        if isinstance(value, Path) and not value.is_absolute():
            setattr(model, name, (base / value))
        elif isinstance(value, list) and value and all(isinstance(v, Path) for v in value):
            setattr(model, name, [v if v.is_absolute() else base / v for v in value])
        elif isinstance(value, BaseModel):
            _resolve_paths(value, base)


def parse_recipe(data: dict[str, Any], sections: dict[str, type], source: str = "<recipe>", base: Path | None = None) -> Recipe:
    """Validate a recipe dict; ``sections`` maps plugin section names to models."""
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(_format_errors(source, e)) from None
    plugin_sections: dict[str, BaseModel] = {}
    errors = []
    for name in sorted(recipe.model_extra or {}):
        if name not in sections:
            known = ", ".join(sorted(CORE_SECTIONS | set(sections)))
            errors.append(f"{source}: {name}: unknown section (no installed plugin reads it; known: {known})")
            continue
        try:
            plugin_sections[name] = sections[name].model_validate(recipe.model_extra[name])
        except ValidationError as e:
            errors.append(_format_errors(source, e, prefix=name))
    if errors:
        raise RecipeError("\n".join(errors))
    for name, model in sections.items():
        plugin_sections.setdefault(name, model())
    if base is not None:
        _resolve_paths(recipe, base)
        for model in plugin_sections.values():
            _resolve_paths(model, base)
    recipe._plugin_sections = plugin_sections
    recipe._source = source
    return recipe


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RecipeError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e}") from None


def site_files(path: Path | None) -> list[Path]:
    """The site rule files a recipe names, read before the plugins that
    validate the rest of it are loaded."""
    if path is None:
        return []
    path = Path(path)
    try:
        site = SiteSection.model_validate(_read_toml(path).get("site", {}))
    except ValidationError as e:
        raise RecipeError(_format_errors(str(path), e, prefix="site")) from None
    base = path.parent.absolute()
    return [f if f.is_absolute() else base / f for f in site.files]


def load_recipe(path: Path | None, sections: dict[str, type]) -> Recipe:
    """Read and validate a recipe file; None gives the defaults."""
    if path is None:
        return parse_recipe({}, sections, "<defaults>")
    path = Path(path)
    return parse_recipe(_read_toml(path), sections, str(path), base=path.parent.absolute())


DEFAULT_RECIPE = """\
# medscrub recipe: everything a run does.  Validate with `medscrub recipe check FILE`.
# Paths are relative to this file.

[secret]
# The pseudonymisation secret never goes in the recipe: say where it is.
env = "MEDSCRUB_SECRET"          # environment variable holding the secret
# file = "/secure/medscrub.key"  # or a key file (wins over env)

[dates]
# remove: as the profile says (dates emptied or dummied)
# shift:  every date moved back by a keyed per-patient offset, intervals kept
# keep:   dates left as they are
policy = "remove"
shift_min_days = 30
shift_max_days = 3650

[pseudonyms]
# keyed: pseudonyms derived from the secret; lookup: from the CSV table below
patient = "keyed"
prefix = "P"
# lookup = "pseudonyms.csv"      # columns original,pseudonym (and optionally kind)
# missing = "fail"               # a patient not in the table: fail | keyed

[output]
naming = "mirror"                # mirror the input tree, or "pseudonymous"
# reidentification_map = "/secure/map.sqlite"   # original -> pseudonym, mode 0600

[run]
verify = true                    # leak-check every output before it lands
deep_verify = false              # also parse each output with its format's verifier (slower)
cleaners = []                    # pixel cleaners, e.g. ["erase-text", "deface"]
report = false                   # write the HTML QA report (OUT/.medscrub/report) at the end
internal_previews = false        # keep "before" pictures too: they show PHI

[site]
files = []                       # site rules as plain .py plugins

# Site rules override the profile; the last matching rule wins.
# [[rules]]
# match = "PatientComments"      # keyword, (gggg,eeee), (0019,xx0C)@CREATOR, vr:PN
# action = "remove"              # keep remove empty replace hash shift pseudonymise
"""
