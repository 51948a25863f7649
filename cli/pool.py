"""barapi pool set / show."""

import json
from typing import Annotated

import typer
from barapi.cli.app import friendly, pool_app
from barapi.cli.options import JsonOption

from barapi.store import Store


@pool_app.command("set")
@friendly
def pool_set(
    name: Annotated[str, typer.Argument(help="Pool name.")],
    budget: Annotated[float, typer.Option(min=0, help="The pool's limit in dollars, across every run drawing on it.")],
) -> None:
    """Create a pool, or change its limit (runs on it see the new limit at their next request)."""
    store = Store()
    store.set_pool(name, budget)
    report = store.pool_report(name)
    typer.echo(f"pool {name}: ${report['spent_usd']:.4f} of ${budget:.2f} spent by {len(report['runs'])} run(s)")


@pool_app.command("show")
@friendly
def pool_show(name: Annotated[str, typer.Argument(help="Pool name.")], as_json: JsonOption = False) -> None:
    """A pool's limit and spend, by run, and what running runs hold aside to end measured."""
    report = Store().pool_report(name)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"pool {name}: ${report['spent_usd']:.4f} of ${report['budget_usd']:.2f} ({report['queries_paid']:,} queries paid)")
    for row in report["runs"]:
        typer.echo(f"  {row['run']:<32} {row['queries_paid']:>9,} queries  ${row['spent_usd']:.4f}")
    if report["reserves"]:
        typer.echo(f"held for running runs to end measured (label mapping, closing pass, test set): ${report['held_usd']:.4f}; "
                   f"free for training: ${report['budget_usd'] - report['spent_usd'] - report['held_usd']:.4f}")
        for row in report["reserves"]:
            typer.echo(f"  {row['run']:<32} held  ${row['held_usd']:.4f}")
