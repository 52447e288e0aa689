"""The plugin contract: every hook medscrub calls, in the order a run calls them.

A plugin is a module or object with functions marked ``@medscrub.hookimpl``
whose names are the hooks below.  An installed plugin registers itself under
the entry-point group ``medscrub``; a site's one-off rules can be a plain
``.py`` file named in the recipe.  A misspelled hook name is an error.

A run flows one way::

    discover -> read -> rules -> cleaners -> write -> verify -> record

and each arrow is a hook call.  The core knows no format: a plugin claims the
paths it reads and acts only on assets of its own formats.

``context`` is the run's :class:`medscrub.context.RunContext`: the recipe,
the pseudonym service, the plugin options and the input and output roots.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from .context import RunContext
    from .model import Asset, Claim, Cleaner, Finding, Format, Item
    from .output import OutputSink
    from .rules import RuleBook, RuleSet
    from .volume import Volume

hookspec = pluggy.HookspecMarker("medscrub")


# --------------------------------------------------------------------------
# Registration: called once when a plugin manager is built or a run starts.
# Each takes a ``register`` callback and may call it any number of times.
# --------------------------------------------------------------------------


@hookspec
def medscrub_register_formats(register: Callable[[Format], None]) -> None:
    """Name the formats this plugin reads, for ``medscrub plugins`` and the docs."""


@hookspec
def medscrub_recipe_sections(register: Callable[[str, type], None]) -> None:
    """Register a pydantic model for a top-level recipe section, ``register("dicom", DicomOptions)``.

    The core validates the section with it and hands the model instance to the
    plugin as ``context.options("dicom")``.
    """


@hookspec
def medscrub_register_cleaners(register: Callable[[Cleaner], None]) -> None:
    """Offer pixel cleaners (deface, skull-strip, erase-text, ...)."""


@hookspec
def medscrub_register_executors(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Offer a way to run items: ``register("local", factory)``.

    ``factory(workers: int, options: dict) -> Executor`` where an executor has
    ``run(items, config) -> Iterator[ItemResult]``.
    """


@hookspec
def medscrub_register_commands(app: typer.Typer) -> None:
    """Add subcommands to the ``medscrub`` command line."""


@hookspec
def medscrub_metadata_rules(register: Callable[[RuleSet], None], context: RunContext) -> None:
    """Contribute metadata rule sets.

    Rule sets compose by layer, lowest first, and a later layer overrides an
    earlier one for the elements both match: the standard profile
    (``rules.PROFILE``), installed site-rule plugins (``rules.PLUGIN``), site
    ``.py`` files named in the recipe (``rules.SITE``), and the recipe's own
    ``[[rules]]`` (``rules.RECIPE``).  Within a layer, the later registration
    wins.
    """


@hookspec
def medscrub_check_rules(rules: RuleBook, context: RunContext) -> list[str] | None:
    """Return a message for each rule meant for this plugin's formats that it
    cannot understand (a bad selector or value).  Called before a run starts
    and by ``medscrub recipe check``, so a typo stops the run, not each file."""


# --------------------------------------------------------------------------
# Discovery: which plugin reads which paths.
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def medscrub_claim(path: Path, context: RunContext) -> Claim | None:
    """Return a :class:`Claim` if this plugin reads ``path`` (a file or a folder).

    Folders are offered before their contents: claiming a folder (or listing
    it in ``Claim.paths``) keeps discovery out of it.  The first non-None
    result wins.  Look at the content, not only the name, but read little:
    this is called for every file of a run.
    """


@hookspec(firstresult=True)
def medscrub_group_key(item: Item, context: RunContext) -> str | None:
    """Return a key to make items one work unit: items with the same key are
    merged into one :class:`Item` whose ``paths`` hold every file and whose
    ``members`` name them (the slices of a DICOM series, for a cleaner that
    needs the volume).  None keeps the item alone.  Called in the main
    process after discovery; group only when ``context.cleaners`` need it.
    """


# --------------------------------------------------------------------------
# Per item, in a worker process.
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def medscrub_read(item: Item, context: RunContext) -> Asset | None:
    """Open an item of one of this plugin's formats as an :class:`Asset`.

    Return None for other formats.  Raise :class:`medscrub.BadInput` with a
    one-line reason for a damaged input.  Record the identifying values the
    leak check should look for with ``asset.remember(kind, value)``.
    """


@hookspec(firstresult=True)
def medscrub_apply_rules(asset: Asset, rules: RuleBook, context: RunContext) -> bool | None:
    """Apply the metadata rules to an asset of this plugin's format; return True.

    ``rules`` holds every registered rule set in layer order.  Record each
    change with ``asset.record(...)``.  An asset that no plugin cleans is
    never written.
    """


# --------------------------------------------------------------------------
# The volume hand-off: how a pixel cleaner gets a 3D image from any format.
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def medscrub_get_volume(asset: Asset, context: RunContext) -> Volume | None:
    """Return the asset's image as a :class:`medscrub.volume.Volume` (voxels
    and a voxel-to-RAS+ affine), or None when this plugin does not hold it."""


@hookspec(firstresult=True)
def medscrub_put_volume(asset: Asset, volume: Volume, context: RunContext) -> bool | None:
    """Put a cleaned volume (same shape and affine) back into the asset, so
    that the writer writes it in the input's format; return True."""


@hookspec
def medscrub_inspect(asset: Asset, context: RunContext) -> None:
    """Look at a cleaned asset before it is written: set ``asset.flags`` (such
    as possible burned-in text) or ``asset.quarantine`` with a reason.  Every
    implementation is called; one marked ``tryfirst`` may still make a last
    change that others should see (medscrub-wsi puts its generated label into
    a DICOM WSI label instance here, before medscrub-dicom's burned-in check)."""


@hookspec(firstresult=True)
def medscrub_output_name(asset: Asset, context: RunContext) -> str | None:
    """Name the output for ``output.naming = "pseudonymous"`` as a relative POSIX path.

    Build it from pseudonyms only; the core sanitises each part and keeps it
    inside the output folder.  None leaves the mirrored input path.
    """


@hookspec(firstresult=True)
def medscrub_write(asset: Asset, sink: OutputSink, context: RunContext) -> bool | None:
    """Write an asset of this plugin's format into ``sink``; return True.

    Write only to paths from ``sink.path(...)``: they are temporary files that
    the core renames into place once everything succeeded, so an output
    appears whole or not at all and never over an input.
    """


@hookspec
def medscrub_verify(
    output: Path, original: Path | None, format: str, context: RunContext
) -> list[Finding] | None:
    """Look for identifying values of ``original`` (or, with no original, of
    any kind the format knows) left in ``output``; return what was found.

    Called by ``medscrub verify`` and, with ``[run] deep_verify = true``, for
    every output of a run before it lands (``output`` is then the temporary
    file).  Return None for other formats and ``[]`` for a clean output.
    """
