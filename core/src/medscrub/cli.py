"""The ``medscrub`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from .context import RunConfig, RunContext, recipe_sections
from .model import MedscrubError
from .plugins import collect, make_plugin_manager, plugin_infos
from .pseudonyms import Secret, load_secret, new_secret_file
from .recipe import DEFAULT_RECIPE, load_recipe, site_files

EXIT_FAILED_ITEMS = 1
EXIT_USAGE = 2

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

app = typer.Typer(
    name="medscrub",
    help=(
        "Remove protected health information from medical imaging data.\n\n"
        "Examples:\n\n"
        "  export MEDSCRUB_SECRET=...        # or --secret-file /secure/key\n\n"
        "  medscrub run scans/ clean/         # de-identify a folder\n\n"
        "  medscrub verify clean/ --against scans/\n\n"
        "  medscrub plugins                   # what is installed"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
recipe_app = typer.Typer(help="Write and check recipes.", no_args_is_help=True)
secret_app = typer.Typer(help="Create pseudonymisation secrets.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")
app.add_typer(secret_app, name="secret")


def fail(message: str, code: int = EXIT_USAGE) -> None:
    for line in str(message).splitlines() or [""]:
        err.print(Text(f"Error: {line}"))
    raise typer.Exit(code)


def version_callback(value: bool) -> None:
    if value:
        out.print(f"medscrub {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True, help="Show the version."),
) -> None:
    pass


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} items/s" if speed else "- items/s")


def _secret(secret_file: Path | None, new_secret: Path | None, recipe_path: Path | None, output: Path) -> Secret:
    if new_secret is not None:
        secret = new_secret_file(new_secret, forbidden=[output])
        err.print(f"A new secret was written to {new_secret.absolute()} (mode 0600). Keep it: the same secret gives the same pseudonyms.")
        return secret
    if secret_file is not None:
        return load_secret(file=secret_file)
    if recipe_path is not None:
        # the recipe may say which variable or file holds the secret
        from .recipe import Recipe, _read_toml

        section = Recipe.model_validate({"secret": _read_toml(recipe_path).get("secret", {})}).secret
        file = section.file if section.file is None or section.file.is_absolute() else recipe_path.parent / section.file
        return load_secret(env=section.env, file=file)
    return load_secret()


@app.command()
def run(
    input: Path = typer.Argument(..., help="A file or folder to de-identify; never modified."),
    output: Path = typer.Argument(..., help="The output folder (created); its tree mirrors the input."),
    recipe: Path | None = typer.Option(None, "--recipe", "-r", help="Recipe TOML (see `medscrub recipe init`)."),
    workers: int = typer.Option(0, "--workers", "-w", help="Worker processes; 0 = one per CPU."),
    deface: bool = typer.Option(False, "--deface", help="Deface heads (needs medscrub-deface)."),
    skull_strip: bool = typer.Option(False, "--skull-strip", help="Keep only the brain (needs medscrub-deface)."),
    erase_text: bool = typer.Option(False, "--erase-text", help="Erase burned-in text (needs medscrub-ocr)."),
    secret_file: Path | None = typer.Option(None, "--secret-file", help="Key file with the secret (else $MEDSCRUB_SECRET)."),
    new_secret: Path | None = typer.Option(None, "--new-secret", help="Create a new secret in this file (outside OUTPUT) and use it."),
    executor: str = typer.Option("local", "--executor", help="How items run: local, or one a plugin adds."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Scheduler address for a cluster executor."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; only the summary."),
) -> None:
    """De-identify INPUT into OUTPUT.

    Every file is read, cleaned by the metadata rules and the pixel cleaners
    you switch on, written atomically, leak-checked and recorded in
    OUTPUT/.medscrub/manifest.jsonl.  A rerun into the same OUTPUT resumes.

    Exit status: 0 all done, 1 some items failed, 2 usage or recipe error.

    Examples:

      medscrub run dicom/ out/ --secret-file ~/medscrub.key

      medscrub run scans/ out/ --recipe site.toml --workers 8 --erase-text
    """
    from .pipeline import run_batch

    cleaners = tuple(name for name, on in (("deface", deface), ("skull-strip", skull_strip), ("erase-text", erase_text)) if on)
    try:
        secret = _secret(secret_file, new_secret, recipe, output)
        config = RunConfig(recipe, secret, input.absolute(), output.absolute(), cleaners)
        show = not quiet and err.is_terminal
        with Progress(
            TextColumn("[bold]medscrub"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(),
            console=err, disable=not show, transient=False,
        ) as bar:
            task = bar.add_task("run", total=None)

            def progress(result, total):
                if total is not None:
                    bar.update(task, total=total + bar.tasks[0].completed)
                elif result is not None:
                    bar.advance(task)
                    if result.status != "done" and show:
                        bar.console.print(Text(f"{result.status}: {result.id}: {result.reason}"))

            options = {"scheduler": scheduler} if scheduler else {}
            summary = run_batch(config, workers=workers, executor=executor, executor_options=options, progress=progress)
    except MedscrubError as e:
        fail(str(e))
        return
    if not show:
        for r in summary.results:
            if r.status != "done":
                err.print(Text(f"{r.status}: {r.id}: {r.reason}"))
    counts = {s: summary.count(s) for s in ("done", "failed", "quarantined", "unsupported")}
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "done")
    if summary.skipped:
        line += f", {summary.skipped} already done"
    err.print(f"{line}. Manifest: {output / '.medscrub' / 'manifest.jsonl'}")
    if summary.report:
        err.print(f"Report: {summary.report}")
    raise typer.Exit(summary.exit_code)


@app.command()
def verify(
    output: Path = typer.Argument(..., help="A de-identified folder."),
    against: Path = typer.Option(..., "--against", help="The original input it was made from."),
    recipe: Path | None = typer.Option(None, "--recipe", "-r", help="The recipe of the run (what it kept on purpose)."),
    json_output: bool = typer.Option(False, "--json", help="Findings as JSON lines."),
    ocr: str | None = typer.Option(
        None, "--ocr", metavar="flagged|all|off",
        help="Read text in the pixels with OCR, where medscrub-ocr is installed. flagged: DICOM outputs whose input "
        "says or may show burned-in text (BurnedInAnnotation YES, or no NO and US, SC, XA, OT...) and plain images; "
        "all: every output with pixels (slow: about half a second a frame); off. Default: the recipe's "
        "[ocr] verify, which is flagged.",
    ),
    ocr_any_text: bool = typer.Option(
        False, "--ocr-any-text", help="With OCR, report any text read in the pixels, not only the input's names, "
        "IDs, dates and places.",
    ),
) -> None:
    """Look for identifying values of AGAINST left anywhere in OUTPUT.

    Each finding names the file, the place and the kind of value, never the
    value in full.  Exit status 1 when anything is found.

    Example:

      medscrub verify out/ --against dicom/ --recipe site.toml
    """
    from .verify import verify_tree

    if ocr is not None and ocr not in ("flagged", "all", "off"):
        fail(f"--ocr must be flagged, all or off, not {ocr!r}")
    switches: dict = {"ocr": ocr} if ocr else {}
    if ocr_any_text:
        switches["any_text"] = True
    try:
        findings, checked = verify_tree(output.absolute(), against.absolute(), recipe, switches)
    except MedscrubError as e:
        fail(str(e))
        return
    for f in findings:
        if json_output:
            out.print(json.dumps({"file": f.file, "place": f.place, "kind": f.kind, "hint": f.hint}), soft_wrap=True)
        else:
            out.print(Text(f.line()), soft_wrap=True)
    ocr_note = ""
    if ocr in ("flagged", "all") or ocr_any_text:  # asked for: say what it did
        n = switches.get("ocr_checked")
        ocr_note = f" ({n} read with OCR)" if n is not None else " (no OCR: medscrub-ocr is not installed or loaded)"
    err.print(f"{checked} output file(s) checked{ocr_note}, {len(findings)} finding(s).")
    raise typer.Exit(1 if findings else 0)


@app.command()
def report(
    output: Path = typer.Argument(..., help="A folder that `medscrub run` wrote."),
    internal: bool = typer.Option(False, "--internal", help="Show original file names and 'before' pictures (PHI!)."),
) -> None:
    """Write the HTML QA report of a run to OUTPUT/.medscrub/report/index.html.

    Counts, failures with reasons, actions per format, and the pictures of
    every pixel change. It opens offline and, unless --internal, shows no PHI.

    Example:

      medscrub report clean/ && chromium clean/.medscrub/report/index.html
    """
    from .report import build_report

    try:
        index = build_report(output, internal=internal)
    except MedscrubError as e:
        fail(str(e))
        return
    err.print(f"Report: {index}")


@app.command()
def plugins(json_output: bool = typer.Option(False, "--json", help="As JSON.")) -> None:
    """List installed plugins: name, version, formats, cleaners and hooks."""
    try:
        pm = make_plugin_manager()
    except MedscrubError as e:
        fail(str(e))
        return
    infos = plugin_infos(pm)
    formats = {f.name: f for f in collect(pm, "medscrub_register_formats")}
    cleaners = [c.name for c in collect(pm, "medscrub_register_cleaners")]
    if json_output:
        out.print(json.dumps({"plugins": infos, "formats": sorted(formats), "cleaners": cleaners}, indent=1))
        return
    table = Table("plugin", "distribution", "version", "hooks", box=None)
    for info in infos:
        table.add_row(info["name"], info["distribution"] or "", info["version"] or "", ", ".join(h.removeprefix("medscrub_") for h in info["hooks"]))
    out.print(table)
    out.print("formats: " + (", ".join(f"{f.name} ({f.description})" for f in formats.values()) or "none"))
    out.print("pixel cleaners: " + (", ".join(cleaners) or "none"))


@recipe_app.command("init")
def recipe_init(path: Path = typer.Argument(Path("medscrub.toml"), help="Where to write the recipe.")) -> None:
    """Write a commented default recipe, with a section for each installed plugin."""
    if path.exists():
        fail(f"{path} exists already")
    try:
        pm = make_plugin_manager()
    except MedscrubError as e:
        fail(str(e))
        return
    text = DEFAULT_RECIPE
    for name, model in sorted(recipe_sections(pm).items()):
        text += f"\n[{name}]\n"
        for field_name, field in model.model_fields.items():
            default = field.get_default(call_default_factory=True)
            comment = f"  # {field.description}" if field.description else ""
            text += f"{field_name} = {_toml_value(default)}{comment}\n"
    path.write_text(text)
    err.print(f"Wrote {path}. Check it with: medscrub recipe check {path}")


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if value is None:
        return '""'
    return json.dumps(str(value))


@recipe_app.command("check")
def recipe_check(path: Path = typer.Argument(..., help="The recipe to validate.")) -> None:
    """Validate a recipe: its keys, values, site files and rule selectors."""
    try:
        pm = make_plugin_manager(site_files=site_files(path))
        recipe = load_recipe(path, recipe_sections(pm))
        context = RunContext(RunConfig(path, Secret(b"\0" * 32, "check"), Path("."), Path(".")), pm=pm, recipe=recipe)
        problems = context.check_rules()
    except MedscrubError as e:
        fail(str(e))
        return
    if problems:
        fail("\n".join(problems))
    out.print(f"{path}: OK ({len(context.rules.sets)} rule set(s): {', '.join(context.rules.names())})")


@secret_app.command("new")
def secret_new(path: Path = typer.Argument(..., help="The key file to create (mode 0600).")) -> None:
    """Create a strong random secret in a new key file."""
    try:
        new_secret_file(path)
    except MedscrubError as e:
        fail(str(e))
    err.print(f"Wrote {path.absolute()}. Pass it with --secret-file; keep it safe and out of the data you share.")


def build_app() -> typer.Typer:
    """The CLI with every plugin's subcommands added."""
    try:
        pm = make_plugin_manager()
        pm.hook.medscrub_register_commands(app=app)
    except MedscrubError as e:
        err.print(Text(f"Error: {e}"))
        sys.exit(EXIT_USAGE)
    return app


def main() -> None:
    build_app()(prog_name="medscrub")
