"""medscrub: remove protected health information from medical imaging data.

The public surface for plugin authors: ``hookimpl`` to mark hook
implementations (the hooks are in :mod:`medscrub.hookspecs`), the values that
pass through them, and the errors a plugin raises.
"""

from importlib.metadata import PackageNotFoundError, version

from .model import (
    ACTIONS,
    Asset,
    BadInput,
    Change,
    Claim,
    Cleaner,
    Finding,
    Format,
    Item,
    ItemResult,
    MedscrubError,
    Preview,
    UnsupportedInput,
    mask,
)
from .plugins import hookimpl
from .rules import PLUGIN, PROFILE, RECIPE, SITE, Rule, RuleBook, RuleSet

try:
    __version__ = version("medscrub")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ACTIONS", "Asset", "BadInput", "Change", "Claim", "Cleaner", "Finding", "Format", "Item",
    "ItemResult", "MedscrubError", "PLUGIN", "PROFILE", "Preview", "RECIPE", "Rule", "RuleBook",
    "RuleSet", "SITE", "UnsupportedInput", "hookimpl", "mask", "__version__",
]
