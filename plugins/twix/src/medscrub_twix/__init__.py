"""medscrub-twix: remove protected health information from Siemens twix raw MR data.

The hooks are in :mod:`medscrub_twix.plugin`; what is scrubbed and how is in
``docs/twix.md``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medscrub-twix")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
