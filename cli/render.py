"""What a human sees: a live progress line on a terminal, plain lines elsewhere, nothing with
--json (stdout then carries only the final JSON object)."""

from __future__ import annotations

import sys
import time

import typer

from barapi.trainer import Progress

# Off a terminal, one line per this many seconds keeps logs readable.
PLAIN_INTERVAL_S = 10.0


def fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "—" if value is None else pattern.format(value)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def progress_line(p: Progress, first_iteration: int, started: float) -> str:
    if p.phase == "mapping":
        return "building the label mapping from the starting program's predictions…"
    if p.phase == "evaluating":
        return f"evaluating on the test set…  queries {p.queries_paid:,} paid + {p.queries_cached:,} cached  ${p.cost_usd:.4f}"
    elapsed = time.monotonic() - started
    done = p.iteration - first_iteration
    eta = elapsed / done * (p.iterations - p.iteration) if done > 0 else None
    test = f"  test acc {fmt(p.test_accuracy, '{:.1%}')}" if p.test_accuracy is not None else ""
    return (
        f"iter {p.iteration}/{p.iterations}  loss {fmt(p.loss)}  acc {fmt(p.train_accuracy, '{:.1%}')}{test}  "
        f"queries {p.queries_paid:,}+{p.queries_cached:,} cached  ${p.cost_usd:.4f}  "
        f"elapsed {duration(elapsed)}  ETA {'—' if eta is None else duration(eta)}"
    )


class ProgressPrinter:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live = sys.stderr.isatty()
        self.started = time.monotonic()
        self.first_iteration: int | None = None
        self.last_plain = 0.0

    def __call__(self, p: Progress) -> None:
        if self.quiet or p.phase == "done":
            return
        if self.first_iteration is None and p.phase == "training":
            self.first_iteration = p.iteration - 1
        line = progress_line(p, self.first_iteration or 0, self.started)
        if self.live:
            typer.echo("\r\x1b[2K" + line, err=True, nl=False)
        elif time.monotonic() - self.last_plain >= PLAIN_INTERVAL_S or p.phase != "training" or p.iteration == p.iterations:
            self.last_plain = time.monotonic()
            typer.echo(line, err=True)

    def finish(self) -> None:
        if self.live and not self.quiet:
            typer.echo("", err=True)
