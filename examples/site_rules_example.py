"""An example site rules plugin for medscrub-dicom.

Name this file in a recipe to use it:

    [site]
    files = ["site_rules_example.py"]

Its rules sit in the SITE layer: above the standard profile and installed
plugins, below the recipe's own [[rules]].
"""

from medscrub import SITE, Rule, RuleSet, hookimpl


@hookimpl
def medscrub_metadata_rules(register, context):
    register(
        RuleSet(
            name="example-hospital",
            layer=SITE,
            formats=("dicom",),
            rules=(
                # Our scanners write the referral text into PatientComments: never keep it.
                Rule("PatientComments", "remove"),
                # The trial needs a stable, non-reversible accession key.
                Rule("AccessionNumber", "hash"),
                # Keep the protocol name: our protocol names are a controlled list.
                Rule("ProtocolName", "keep"),
                # Siemens keeps the slice's B-value in a private element.
                Rule("(0019,xx0C)@SIEMENS MR HEADER", "keep"),
                # Every person name other than the patient's becomes empty.
                Rule("vr:PN", "empty"),
                # ...but the patient's name gets the patient pseudonym.
                Rule("PatientName", "pseudonymise"),
                Rule("InstitutionName", "replace", value="TRIAL SITE 07"),
            ),
        )
    )
