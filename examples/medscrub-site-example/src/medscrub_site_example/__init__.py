"""Example Hospital's rules on top of the DICOM confidentiality profile.

Installed, this plugin's rule set sits in the PLUGIN layer: above the
standard profile, below site files and the recipe's own [[rules]].
"""

from medscrub import PLUGIN, Rule, RuleSet, hookimpl

RULES = RuleSet(
    name="example-hospital",
    layer=PLUGIN,
    formats=("dicom",),
    rules=(
        # Study descriptions here are protocol names, never patient data.
        Rule("StudyDescription", "keep"),
        # The hospital's private group carries the requesting ward.
        Rule("(0009,xx10)@EXAMPLE HOSPITAL", "remove"),
        # Recipients should see which site the data came from, not its name.
        Rule("InstitutionName", "replace", value="Example Research Site"),
    ),
)


@hookimpl
def medscrub_metadata_rules(register, context):
    register(RULES)
