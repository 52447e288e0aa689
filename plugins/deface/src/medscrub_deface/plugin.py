"""The hook implementations: two pixel cleaners, the ``[deface]`` recipe
section and ``medscrub deface``.

Kept light: torch is imported only when a cleaner runs or a command starts.
"""

from __future__ import annotations

from medscrub import Cleaner, hookimpl

from . import cleaner
from .options import DefaceOptions


@hookimpl
def medscrub_recipe_sections(register) -> None:
    register("deface", DefaceOptions)


@hookimpl
def medscrub_register_cleaners(register) -> None:
    register(Cleaner(cleaner.DEFACE, cleaner.DEFACE_HELP, cleaner.applies, cleaner.deface, flag="--deface",
                     volumes=True))
    register(Cleaner(cleaner.SKULL_STRIP, cleaner.SKULL_STRIP_HELP, cleaner.applies, cleaner.skull_strip,
                     flag="--skull-strip", volumes=True))


@hookimpl
def medscrub_register_commands(app) -> None:
    from .cli import app as deface_app

    app.add_typer(deface_app, name="deface")
