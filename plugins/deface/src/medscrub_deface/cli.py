"""``medscrub deface train|evaluate``: the commands this plugin adds."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="The defacer's network: train it, evaluate it.", no_args_is_help=True)


@app.command("train")
def train_command(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="training/config.toml"),
    out: Path = typer.Option(..., "--out", help="Folder for the weights, settings and loss history."),
    cache: Path | None = typer.Option(None, "--cache", help="Keep the built label maps in this .npz and reuse them."),
    from_stage: int = typer.Option(1, "--from-stage", min=1, help="Start at this stage of the config..."),
    init: Path | None = typer.Option(None, "--init", help="...from the weights the stage before left in this folder."),
    to_stage: int | None = typer.Option(None, "--to-stage", min=1, help="Stop after this stage (default: the last)."),
    workers: int | None = typer.Option(None, "--workers", min=0,
                                       help="Processes painting samples (default: the config's); same weights."),
) -> None:
    """Train the U-Net on synthetic heads; reproduces the shipped weights."""
    from .train import train

    where = train(config, out, cache, from_stage, init, log=lambda line: typer.echo(line), workers=workers,
                  to_stage=to_stage)
    typer.echo(f"weights in {where}")


@app.command("evaluate")
def evaluate_command(
    data: Path = typer.Option(Path("plugins/deface/training/data.toml"), "--data", exists=True, dir_okay=False,
                              help="The data list of the reference heads."),
    weights: Path | None = typer.Option(None, "--weights", help="A folder of trained weights (default: the shipped)."),
    cache: Path | None = typer.Option(None, "--cache", help="Label maps .npz from training, reused if present."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the numbers to this file."),
    pictures: Path | None = typer.Option(None, "--pictures", help="Write before/after PNGs into this folder."),
) -> None:
    """Per reference head: face removed, brain lost, skull-strip Dice, time, memory."""
    from .evaluate import evaluate

    evaluate(data, weights, cache, json_out, pictures, echo=typer.echo)
