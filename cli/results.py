"""Using what a run learned: eval, predict, export."""

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from barapi import api
from barapi.cli.app import app, friendly
from barapi.cli.options import JsonOption, percent, with_options
from barapi.cli.providers import provider_options
from barapi.cli.render import ProgressPrinter

from barapi.errors import ConfigError


@app.command("eval")
@friendly
def evaluate(
    run: Annotated[str, typer.Argument(help="Run name (see `barapi runs list`).")],
    dataset: Annotated[
        Optional[str], typer.Option(help="Evaluate on this dataset (same class names) instead of the run's test split.")
    ] = None,
    budget: Annotated[Optional[float], typer.Option(help="Raise the run's dollar budget for this evaluation.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Accuracy, per-class accuracy and confusion matrix of a run's program; queries go through
    the budget, cache and ledger like any other."""
    printer = ProgressPrinter(quiet=as_json)
    try:
        figures = api.Run(run).evaluate(dataset, budget=budget, on_progress=printer)
    finally:
        printer.finish()
    if as_json:
        typer.echo(json.dumps(figures))
        return
    typer.echo(
        f"accuracy {figures['accuracy']:.1%} on {int(np.sum(figures['confusion']))} images ({figures['queries_paid']:,} queries paid, ${figures['cost_usd']:.4f})"
    )
    for name, row in figures["per_class"].items():
        typer.echo(f"  {name:>12}: {percent(row['accuracy'])} of {row['support']}")
    if "sensitivity" in figures:
        typer.echo(f"  sensitivity {percent(figures['sensitivity'])}, specificity {percent(figures['specificity'])}")
    typer.echo("confusion (rows: truth, columns: predicted):")
    for name, row in zip(figures["classes"], figures["confusion"]):
        typer.echo(f"  {name:>12}: " + " ".join(f"{n:4d}" for n in row))


@app.command()
@friendly
@with_options(provider_options, "provider")
def predict(
    provider: dict[str, Any],
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="[RUN] IMAGE...",
            help="The run whose program to apply (omit it with --program), then the image files.",
            show_default=False,
        ),
    ],
    program: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder written by `barapi export` instead of a run: works without the database that trained it."
        ),
    ] = None,
    budget: Annotated[
        Optional[float], typer.Option(help="Most dollars these predictions may spend.", rich_help_panel="Budget")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image on stdout.")] = False,
) -> None:
    """Apply a learned program and label mapping to new images through the same provider."""
    run, names = (None, targets) if program is not None else (targets[0], targets[1:])
    if not names:
        raise ConfigError("no image to classify: barapi predict RUN IMAGE... (or --program DIR IMAGE...)")
    images = [Path(name) for name in names]
    learned = api.ExportedProgram(program) if program is not None else api.Run(run)
    # The ledger books these queries to the run (or to the exported program), like any other.
    result = learned.predict(images, budget=budget, **provider)
    classes = result.classes
    for path, row in zip(images, result.shares):
        best = int(np.argmax(row))
        if as_json:
            scores = {c: round(float(v), 6) for c, v in zip(classes, row)}
            typer.echo(
                json.dumps(
                    {
                        "image": str(path),
                        "class": classes[best],
                        "score": scores[classes[best]],
                        "scores": scores,
                    }
                )
            )
        else:
            typer.echo(f"{path}: {classes[best]} ({row[best]:.1%})")
    if not as_json:
        typer.echo(
            f"{result.queries_paid:,} queries paid, {result.queries_cached:,} from cache, ${result.cost_usd:.4f}",
            err=True,
        )


@app.command()
@friendly
def export(
    run: Annotated[str, typer.Argument(help="Run name (see `barapi runs list`).")],
    out: Annotated[Path, typer.Option(help="Folder to write the artifact into.")],
) -> None:
    """Write a run's program as a portable artifact: program.npz, mapping.json, config.json,
    program.png and example-*.png (what the API sees). `barapi predict --program DIR` uses it."""
    chosen = api.Run(run)
    written = chosen.export(out)
    typer.echo(f"exported run {run} (program {chosen.learned().sha256[:12]}) to {out}: " + ", ".join(p.name for p in written))
