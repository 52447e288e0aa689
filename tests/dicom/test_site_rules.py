"""Site rules for DICOM: every selector form and action, their order over the
profile, and the validation of bad selectors and values."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pydicom
import pytest
from dicom_builders import ct_dataset
from pydicom import Dataset

from medscrub import PLUGIN, RECIPE, SITE, Item, Rule, RuleBook, RuleSet, hookimpl
from medscrub.context import RunConfig, RunContext
from medscrub.output import OutputSink
from medscrub.pseudonyms import Secret
from medscrub_dicom.rules import SelectorError, check_rules, parse_selector

warnings.filterwarnings("ignore", module="pydicom")

SECRET = Secret(b"k" * 32)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


class SiteRules:
    """A fake site plugin: registers the given rule sets for one test."""

    def __init__(self, *rulesets: RuleSet) -> None:
        self.rulesets = rulesets

    @hookimpl
    def medscrub_metadata_rules(self, register, context):
        for ruleset in self.rulesets:
            register(ruleset)


def make_context(tmp_path: Path, recipe: str = "", *rulesets: RuleSet) -> RunContext:
    (tmp_path / "in").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "recipe.toml"
    path.write_text(recipe)
    extra = (SiteRules(*rulesets),) if rulesets else ()
    return RunContext(RunConfig(path, SECRET, tmp_path / "in", tmp_path / "out", extra_plugins=extra))


def site(*rules: Rule, layer: int = SITE, name: str = "site") -> RuleSet:
    return RuleSet(name, tuple(rules), layer=layer, formats=("dicom",))


def dataset() -> Dataset:
    ds = ct_dataset(
        PatientComments="walks with a cane", AccessionNumber="ACC998877", AcquisitionDate="20240115",
        StudyID="S42", ReferringPhysicianName="Who^Doctor", OperatorsName="Nurse^Ann",
        InstitutionName="Saint Elsewhere", ProtocolName="HEAD ROUTINE",
    )
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100C, "IS", "1000")  # B value: on the safe list
    ds.add_new(0x00191008, "CS", "IMAGE NUM 4")  # not on the safe list
    ds.add_new(0x00090010, "LO", "ACME PRIVATE")
    ds.add_new(0x00091001, "LO", "acme value")
    return ds


def cleaned(context: RunContext, ds: Dataset | None = None) -> Dataset:
    path = context.input_root / "in.dcm"
    (ds or dataset()).save_as(path, enforce_file_format=True)
    hook = context.pm.hook
    asset = hook.medscrub_read(item=Item("in.dcm", "dicom", (path,), context.input_root), context=context)
    hook.medscrub_apply_rules(asset=asset, rules=context.rules, context=context)
    sink = OutputSink(context.output_root, "in.dcm")
    hook.medscrub_write(asset=asset, sink=sink, context=context)
    sink.commit()
    return pydicom.dcmread(context.output_root / "in.dcm")


# -- selector forms ----------------------------------------------------------------


@pytest.mark.parametrize("selector", ["PatientComments", "(0010,4000)", "0010,4000", "00104000", "(0010,40xx)"])
def test_each_tag_selector_form_keeps_an_element_the_profile_removes(tmp_path, selector):
    assert "PatientComments" not in cleaned(make_context(tmp_path / "a"))
    out = cleaned(make_context(tmp_path / "b", "", site(Rule(selector, "keep"))))
    assert out.PatientComments == "walks with a cane"


def test_a_pattern_reaches_every_element_it_covers(tmp_path):
    out = cleaned(make_context(tmp_path, "", site(Rule("(0010,xxxx)", "remove"))))
    assert not any(e.tag.group == 0x0010 for e in out)


def test_private_creator_selector_matches_by_creator_and_offset(tmp_path):
    ds = dataset()
    # the same creator in another block: still matched
    ds.add_new(0x00190011, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019110C, "IS", "2000")
    out = cleaned(make_context(tmp_path, "", site(Rule("(0019,xx0C)@SIEMENS MR HEADER", "keep"))), ds)
    assert out[0x0019100C].value == "1000" and out[0x0019110C].value == "2000"
    assert out[0x00190010].value == "SIEMENS MR HEADER" and out[0x00190011].value == "SIEMENS MR HEADER"
    assert 0x00191008 not in out and 0x00091001 not in out


def test_private_tag_pattern_keeps_a_whole_group(tmp_path):
    out = cleaned(make_context(tmp_path, "", site(Rule("(0009,xxxx)", "keep"))))
    assert out[0x00091001].value == "acme value" and out[0x00090010].value == "ACME PRIVATE"


def test_vr_selector(tmp_path):
    out = cleaned(make_context(tmp_path, "", site(Rule("vr:PN", "replace", value="REDACTED"))))
    assert out.ReferringPhysicianName == "REDACTED" and out.OperatorsName == "REDACTED"
    assert out.PatientName == "REDACTED"


# -- actions ---------------------------------------------------------------------


def test_each_action_overrides_the_profile(tmp_path):
    rules = site(
        Rule("PatientComments", "empty"),
        Rule("InstitutionName", "replace", value="TRIAL SITE 07"),
        Rule("AccessionNumber", "hash"),
        Rule("AcquisitionDate", "shift"),
        Rule("StudyID", "pseudonymise"),
        Rule("Modality", "remove"),
        Rule("ProtocolName", "keep"),
    )
    context = make_context(tmp_path, "", rules)
    out = cleaned(context)
    assert out.PatientComments == ""
    assert out.InstitutionName == "TRIAL SITE 07"
    assert out.AccessionNumber == context.pseudonyms.hash("AccessionNumber", "ACC998877")
    days = context.pseudonyms.date_offset("MRN12345")
    assert out.AcquisitionDate == (dt.date(2024, 1, 15) + dt.timedelta(days=days)).strftime("%Y%m%d")
    assert out.StudyID == context.pseudonyms.pseudonym("StudyID", "S42", length=12)
    assert "Modality" not in out
    assert out.ProtocolName == "HEAD ROUTINE"


def test_pseudonymise_on_patient_elements_uses_the_patient_pseudonym(tmp_path):
    context = make_context(tmp_path, "", site(Rule("vr:PN", "empty"), Rule("PatientName", "pseudonymise")))
    out = cleaned(context)
    assert out.PatientName == context.patient_pseudonym("MRN12345") == out.PatientID
    assert out.OperatorsName == ""


def test_hash_and_pseudonymise_on_a_uid_map_it(tmp_path):
    context = make_context(tmp_path, '[dicom]\nretain_uids = true\n', site(Rule("StudyInstanceUID", "hash")))
    out = cleaned(context)
    assert out.StudyInstanceUID == context.pseudonyms.uid("1.2.3.4.5.6.7.1")
    assert out.SOPInstanceUID == "1.2.3.4.5.6.7.100"


def test_an_action_a_vr_cannot_take_removes_the_element(tmp_path):
    # vr:DA with hash: a hash is no date, so the element goes rather than stay
    out = cleaned(make_context(tmp_path, "", site(Rule("vr:DA", "hash"))))
    assert "StudyDate" not in out and "AcquisitionDate" not in out


# -- order -----------------------------------------------------------------------


def test_the_highest_layer_wins_then_the_latest(tmp_path):
    low = site(Rule("ProtocolName", "keep"), layer=PLUGIN, name="installed")
    mid = site(Rule("ProtocolName", "replace", value="FROM SITE"), Rule("ProtocolName", "replace", value="LATER"),
               name="site")
    assert cleaned(make_context(tmp_path / "a", "", low, mid)).ProtocolName == "LATER"
    recipe = '[[rules]]\nmatch = "ProtocolName"\naction = "replace"\nvalue = "FROM RECIPE"\n'
    assert cleaned(make_context(tmp_path / "b", recipe, mid, low)).ProtocolName == "FROM RECIPE"


def test_the_example_site_plugin_and_recipe(tmp_path):
    recipe = (EXAMPLES / "site-rules.toml").read_text()
    recipe += f'\n[site]\nfiles = ["{EXAMPLES / "site_rules_example.py"}"]\n'
    context = make_context(tmp_path, recipe)
    assert "example-hospital" in context.rules.names()
    assert context.check_rules() == []
    out = cleaned(context)
    assert out.InstitutionName == "TRIAL SITE 07"
    assert "PatientComments" not in out
    assert out.ReferringPhysicianName == ""
    assert out.PatientName == context.patient_pseudonym("MRN12345")


# -- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "selector, kind",
    [("PatientComments", "tag"), ("(0010,4000)", "tag"), ("0010,4000", "tag"), ("00104000", "tag"),
     ("(0010,xxxx)", "pattern"), ("(60xx,4000)", "pattern"), ("(0019,xx0C)@SIEMENS MR HEADER", "private"),
     ("vr:PN", "vr")],
)
def test_selectors_parse(selector, kind):
    assert parse_selector(selector).kind == kind


@pytest.mark.parametrize(
    "selector, message",
    [("PatientNmae", "not a DICOM keyword"), ("(0018,xx0C)@CREATOR", "odd group"), ("(0019,100C)@CREATOR", "xx"),
     ("(0019,xx0C)@", "private creator"), ("vr:QQ", "value representation"), ("(0010,4000", "not a DICOM"),
     ("", "empty")],
)
def test_bad_selectors_are_explained(selector, message):
    with pytest.raises(SelectorError, match=message):
        parse_selector(selector)


def test_check_rules_reports_bad_rules_for_dicom_only(tmp_path):
    book = RuleBook()
    book.add(RuleSet("site", (
        Rule("PatientNmae", "remove", format="dicom"),
        Rule("(0019,xx0C)@", "keep"),
        Rule("StudyDate", "hash"),
        Rule("PatientAge", "pseudonymise"),
        Rule("Rows", "replace", value="many"),
        Rule("Modality", "shift"),
        Rule("Meas:tPatientName", "remove"),  # another format's selector: not ours to judge
        Rule("PatientComments", "remove"),
    ), layer=RECIPE))
    problems = check_rules(book)
    assert len(problems) == 6, problems
    assert any("PatientNmae" in p and "not a DICOM keyword" in p for p in problems)
    assert any("StudyDate" in p and "hash" in p for p in problems)
    assert any("Rows" in p and "integer" in p for p in problems)
    context = make_context(tmp_path, '[[rules]]\nmatch = "vr:XX"\naction = "remove"\n')
    assert any("vr:XX" in p for p in context.check_rules())
