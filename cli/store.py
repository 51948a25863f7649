"""barapi store stats / trim."""

import json
from typing import Annotated, Optional

import typer
from barapi.cli.app import friendly, store_app
from barapi.cli.options import JsonOption

from barapi.errors import ConfigError
from barapi.store import Store

DAY_S = 86_400.0


def size(n: float | None) -> str:
    if n is None:
        return "?"
    units = ("B", "KB", "MB", "GB")
    step = 0
    while n >= 1024 and step < len(units) - 1:
        n, step = n / 1024, step + 1
    return f"{n:,.0f} B" if step == 0 else f"{n:,.1f} {units[step]}"


@store_app.command("stats")
@friendly
def store_stats(as_json: JsonOption = False) -> None:
    """Rows and bytes by table, and the cached answers by run and by provider/model."""
    stats = Store().store_stats()
    if as_json:
        typer.echo(json.dumps(stats))
        return
    typer.echo(f"{stats['where']} ({stats['backend']}): {size(stats['total_bytes'])}")
    for row in stats["tables"]:
        typer.echo(f"  {row['table']:<14} {row['rows']:>12,} rows  {size(row['bytes']):>10}")
    typer.echo("cached answers by provider/model:")
    for row in stats["models"]:
        typer.echo(f"  {row['provider'] + '/' + row['model']:<40} {row['cached_answers']:>10,}  {size(row['cached_bytes']):>10}")
    typer.echo("by run (answers its images have in the cache; an answer two runs share counts for both):")
    for row in stats["runs"]:
        typer.echo(f"  {row['run']:<32} {row['ledger_rows']:>10,} ledger rows  ${row['spent_usd']:.4f}  "
                   f"{row['cached_answers']:>9,} answers  {size(row['cached_bytes']):>10}")


@store_app.command("trim")
@friendly
def store_trim(
    run: Annotated[Optional[list[str]], typer.Option("--run", help="Trim the answers of this run's images (repeat for several); answers another run also read are kept.")] = None,
    older_than: Annotated[Optional[float], typer.Option(min=0, help="Trim answers cached more than this many days ago.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove cached answers you no longer need; the ledger (what was paid) is never touched.

    A trimmed run's resume pays again for the answers it needs that are gone: trim says how many, and at what price."""
    if not run and older_than is None:
        raise ConfigError("say what to trim: --run NAME, --older-than DAYS, or both")
    report = Store().trim_answers(run or (), None if older_than is None else older_than * DAY_S, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report))
        return
    verb = "would remove" if dry_run else "removed"
    kept = f"; kept {report['kept_shared']:,} that other runs also read" if report["kept_shared"] else ""
    typer.echo(f"{verb} {report['answers']:,} cached answer(s), {size(report['score_bytes'])} of scores{kept}; the ledger is unchanged")
    for row in report["resume_would_pay_again"]:
        typer.echo(f"  {row['run']:<32} resuming it could pay again for up to {row['queries']:,} image(s), ${row['usd']:.4f}")
