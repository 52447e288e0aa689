"""Site rules for NIfTI headers, BIDS sidecars and TSVs: selectors and checks.

Selectors, by format:

* ``nifti``: a header text field (``descrip``, ``aux_file``, ``intent_name``,
  ``db_name``, ``data_type``, ``unused_str``, and Analyze's ``generated``,
  ``scannum``, ``patient_id``, ``exp_date``, ``exp_time``, ``hist_un0``), or an
  extension: ``ext:dicom``, ``ext:comment``, ``ext:afni``, ``ext:json`` (any
  extension whose content is a JSON object), ``ext:<code>``.
* ``bids-json``: a JSON key at any depth, or a glob of keys (``Patient*``).
* ``bids-tsv``: ``tsv:<column>`` or a glob (``tsv:*_date``).

A rule without a format applies wherever its selector makes sense: a rule
``InstitutionName`` written for DICOM also reaches the sidecars, whose keys
are the same DICOM keywords.  The last matching rule of the highest layer wins.
"""

from __future__ import annotations

import fnmatch
import re

from nibabel.nifti1 import extension_codes

from medscrub import Rule, RuleBook

from .header import ALL_TEXT_FIELDS

FORMATS = ("nifti", "bids-json", "bids-tsv")
JSON_KEY = re.compile(r"^[A-Za-z_*?\[][A-Za-z0-9_*?\[\]-]*$")
EXT_NAMES = {str(extension_codes.label[c]) for c in extension_codes.value_set()} | {"json"}


def is_glob(selector: str) -> bool:
    return any(c in selector for c in "*?[")


def understands(format: str, selector: str) -> bool:
    """True when ``selector`` means something for ``format``."""
    if format == "nifti":
        if selector.startswith("ext:"):
            name = selector[4:]
            return name in EXT_NAMES or name.isdigit()
        return selector in ALL_TEXT_FIELDS
    if format == "bids-json":
        return bool(JSON_KEY.match(selector)) and not selector.startswith("tsv")
    if format == "bids-tsv":
        return selector.startswith("tsv:") and len(selector) > 4
    return False


class SiteRules:
    """The rules of a run that one of this plugin's formats understands, in order."""

    def __init__(self, rules: RuleBook, format: str) -> None:
        self.format = format
        self.rules = [rule for _, rule in rules.for_format(format) if understands(format, rule.match)]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def find(self, name: str) -> Rule | None:
        """The winning rule for an element name (a field, ``ext:...``, key, ``tsv:...``)."""
        found = None
        for rule in self.rules:
            if rule.match == name or (is_glob(rule.match) and fnmatch.fnmatchcase(name, rule.match)):
                found = rule
        return found

    def find_extension(self, code: int, label: str, is_json: bool) -> Rule | None:
        found = None
        names = {f"ext:{code}", f"ext:{label}"} | ({"ext:json"} if is_json else set())
        for rule in self.rules:
            if rule.match in names:
                found = rule
        return found


def check(rules: RuleBook, context) -> list[str]:
    """Messages for rules meant for these formats that cannot work, and for
    ``[nifti]`` options the rest of the recipe contradicts."""
    messages = []
    for format in FORMATS:
        for ruleset, rule in rules.for_format(format):
            if rule.format != format:
                continue  # a rule for every format: others may understand it
            where = f"rule {rule.match!r} ({ruleset.name})"
            if not understands(format, rule.match):
                messages.append(f"{where}: not a {format} selector; see docs/nifti.md")
                continue
            if format == "nifti" and rule.match.startswith("ext:"):
                if rule.action not in ("keep", "remove"):
                    messages.append(f"{where}: an extension can only be kept or removed")
            elif format == "nifti":
                size = ALL_TEXT_FIELDS[rule.match]
                if rule.action == "shift":
                    messages.append(f"{where}: header text fields cannot be shifted; use remove or replace")
                if rule.action == "replace" and len((rule.value or "").encode("latin-1", "replace")) > size:
                    messages.append(f"{where}: the replacement is longer than the field's {size} bytes")
    options = context.options("nifti")
    naming = context.recipe.output.naming
    if options is not None:
        if (options.relabel_subjects or options.relabel_sessions) and naming != "pseudonymous":
            messages.append(
                "nifti.relabel_subjects/relabel_sessions rename files, which needs output.naming = 'pseudonymous'"
            )
        relabel = options.relabel_subjects if options.relabel_subjects is not None else naming == "pseudonymous"
        if relabel and not re.fullmatch(r"[A-Za-z0-9]*", context.recipe.pseudonyms.prefix):
            messages.append(
                f"pseudonyms.prefix {context.recipe.pseudonyms.prefix!r}: BIDS labels take letters and digits only"
            )
    return messages
