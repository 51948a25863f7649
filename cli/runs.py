"""barapi runs list / show / compare."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from barapi.cli.app import friendly, runs_app
from barapi.cli.options import JsonOption, percent

from barapi import api


@runs_app.command("list")
@friendly
def runs_list(as_json: JsonOption = False) -> None:
    """Every run with its status and spend."""
    summaries = [run.summary() for run in api.runs()]
    if as_json:
        typer.echo(json.dumps(summaries))
        return
    if not summaries:
        typer.echo("no runs yet: `barapi train` starts one")
    for s in summaries:
        typer.echo(
            f"{s['name']:<32} {s['status']:<17} iter {s['iterations']:>5}  test {percent(s['test_accuracy']):>8}  ${s['cost_usd']:.4f}"
        )


PlotOption = Annotated[
    Optional[Path],
    typer.Option(
        help="Also draw loss and test accuracy against queries and dollars into this .png/.svg/.pdf (needs barapi[plot])."
    ),
]


@runs_app.command("show")
@friendly
def runs_show(
    run: Annotated[str, typer.Argument(help="Run name.")], plot: PlotOption = None, as_json: JsonOption = False
) -> None:
    """A run's status, figures and configuration."""
    summary = api.Run(run).summary()
    if plot is not None:
        _plot([run], plot)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for key, value in summary.items():
        if key != "config":
            typer.echo(f"{key:>16}: {value}")


@runs_app.command("compare")
@friendly
def runs_compare(
    runs: Annotated[list[str], typer.Argument(help="Run names.", show_default=False)],
    plot: PlotOption = None,
    as_json: JsonOption = False,
) -> None:
    """Several runs side by side: queries, dollars, accuracy; --plot overlays their curves."""
    summaries = [api.Run(run).summary() for run in runs]
    if plot is not None:
        _plot(runs, plot)
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in s.items() if k != "config"} for s in summaries]))
        return
    typer.echo(f"{'run':<32} {'status':<17} {'iter':>5} {'queries':>9} {'dollars':>9} {'train':>8} {'test':>8}")
    for s in summaries:
        typer.echo(
            f"{s['name']:<32} {s['status']:<17} {s['iterations']:>5} {s['queries_paid']:>9,} {s['cost_usd']:>9.4f} "
            f"{percent(s['train_accuracy'], '—'):>8} {percent(s['test_accuracy'], '—'):>8}"
        )


def _plot(runs: list[str], path: Path) -> None:
    from barapi.cli.plots import plot_runs

    plot_runs({run: api.Run(run).metrics() for run in runs}, path)
    typer.echo(f"wrote {path}", err=True)
