"""The toy format as a site file, for tests that go through the CLI."""

from toyformat import ToyPlugin

_toy = ToyPlugin()
medscrub_register_formats = _toy.medscrub_register_formats
medscrub_claim = _toy.medscrub_claim
medscrub_read = _toy.medscrub_read
medscrub_apply_rules = _toy.medscrub_apply_rules
medscrub_output_name = _toy.medscrub_output_name
medscrub_write = _toy.medscrub_write
medscrub_verify = _toy.medscrub_verify
medscrub_group_key = _toy.medscrub_group_key
