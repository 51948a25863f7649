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
def pool_show(
    name: Annotated[str, typer.Argument(help="Pool name.")],
    verify: Annotated[bool, typer.Option("--verify", help="Recompute the pool's running total from the ledger and report any difference (exit 1 if one).")] = False,
    as_json: JsonOption = False,
) -> None:
    """A pool's limit and spend, by run, what running runs hold aside to end measured, and what
    running workers took in slices and have not used yet."""
    store = Store()
    report = store.pool_report(name)
    check = store.pool_verify(name) if verify else None
    if as_json:
        typer.echo(json.dumps(report | ({"verify": check} if check else {})))
    else:
        show_report(name, report)
        if check is not None:
            typer.echo(f"verify: running total ${check['drawn_usd']:.6f}, recomputed from the ledger ${check['recomputed_usd']:.6f}: "
                       + ("they agree" if check["ok"] else f"DIFFERENCE ${check['difference_usd']:+.6f}"))
    if check is not None and not check["ok"]:
        raise typer.Exit(1)


def show_report(name: str, report: dict) -> None:
    typer.echo(f"pool {name}: ${report['spent_usd']:.4f} of ${report['budget_usd']:.2f} ({report['queries_paid']:,} queries paid)")
    for row in report["runs"]:
        typer.echo(f"  {row['run']:<32} {row['queries_paid']:>9,} queries  ${row['spent_usd']:.4f}")
    if report["in_slices_usd"]:
        typer.echo(f"taken by running workers, not used yet: ${report['in_slices_usd']:.4f}")
    if report["reserves"]:
        free = report["budget_usd"] - report["spent_usd"] - report["held_usd"] - report["in_slices_usd"]
        typer.echo(f"held for running runs to end measured (label mapping, closing pass, test set): ${report['held_usd']:.4f}; "
                   f"free for training: ${free:.4f}")
        for row in report["reserves"]:
            typer.echo(f"  {row['run']:<32} held  ${row['held_usd']:.4f}")
