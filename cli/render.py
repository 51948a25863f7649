"""What a human sees: a live progress bar on a terminal (rich), plain lines elsewhere, nothing
with --json (stdout then carries only the final JSON object)."""

from __future__ import annotations

import sys
import time

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bar

from barapi.run.records import Progress

# Off a terminal, one line per this many seconds keeps logs readable.
PLAIN_INTERVAL_S = 10.0
PHASES = {
    "mapping": "label mapping",
    "candidates": "candidate programs",
    "training": "training",
    "reading": "readout at final W",
    "evaluating": "evaluating",
}


def fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "—" if value is None else pattern.format(value)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def figures(p: Progress) -> str:
    test = f"  test acc {fmt(p.test_accuracy, '{:.1%}')}" if p.test_accuracy is not None else ""
    return (
        f"loss {fmt(p.loss)}  acc {fmt(p.train_accuracy, '{:.1%}')}{test}  "
        f"queries {p.queries_paid:,}+{p.queries_cached:,} cached  ${p.cost_usd:.4f}"
    )


def compact(p: Progress) -> str:
    """The bar's text: the same figures, short enough for an 80-column terminal."""
    test = f" test {fmt(p.test_accuracy, '{:.1%}')}" if p.test_accuracy is not None else ""
    return f"loss {fmt(p.loss)} acc {fmt(p.train_accuracy, '{:.1%}')}{test} q {p.queries_paid:,}+{p.queries_cached:,} ${p.cost_usd:.4f}"


def progress_line(p: Progress, first_iteration: int, started: float) -> str:
    if p.phase == "mapping":
        return "building the label mapping from the starting program's predictions…"
    if p.phase == "candidates":
        return f"candidate {p.iteration}/{p.iterations} answered on the training set  queries {p.queries_paid:,} paid + {p.queries_cached:,} cached  ${p.cost_usd:.4f}"
    if p.phase == "reading":
        return f"answering the training set at the final program, for the readout…  queries {p.queries_paid:,} paid + {p.queries_cached:,} cached  ${p.cost_usd:.4f}"
    if p.phase == "evaluating":
        return f"evaluating on the test set…  queries {p.queries_paid:,} paid + {p.queries_cached:,} cached  ${p.cost_usd:.4f}"
    elapsed = time.monotonic() - started
    done = p.iteration - first_iteration
    eta = elapsed / done * (p.iterations - p.iteration) if done > 0 else None
    return f"iter {p.iteration}/{p.iterations}  {figures(p)}  elapsed {duration(elapsed)}  ETA {'—' if eta is None else duration(eta)}"


class ProgressPrinter:
    """Called with every Progress the trainer emits; ``finish`` leaves the terminal tidy."""

    def __init__(self, quiet: bool, live: bool | None = None) -> None:
        self.quiet = quiet
        self.live = sys.stderr.isatty() if live is None else live
        self.started = time.monotonic()
        self.first_iteration: int | None = None
        self.last_plain = 0.0
        self.bar: Bar | None = None
        self.task = None

    def __call__(self, p: Progress) -> None:
        if self.quiet or p.phase == "done":
            return
        if p.notice:
            typer.echo(f"note: {p.notice}", err=True)
            return
        if self.first_iteration is None and p.phase == "training":
            self.first_iteration = p.iteration - 1
        if self.live:
            self._draw(p)
        elif (
            time.monotonic() - self.last_plain >= PLAIN_INTERVAL_S
            or p.phase not in ("training", "candidates")
            or p.iteration == p.iterations
        ):
            self.last_plain = time.monotonic()
            typer.echo(progress_line(p, self.first_iteration or 0, self.started), err=True)

    def _draw(self, p: Progress) -> None:
        if self.bar is None:
            self.bar = Bar(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=12),
                MofNCompleteColumn(),
                TextColumn("{task.fields[figures]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(compact=True),
                console=Console(stderr=True),
                transient=False,
            )
            self.bar.start()
            # A resumed run starts part-way: the ETA then counts only this session's pace.
            self.task = self.bar.add_task(PHASES[p.phase], total=p.iterations, completed=p.iteration, figures="")
        self.bar.update(self.task, description=PHASES[p.phase], total=p.iterations, completed=p.iteration, figures=compact(p))

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def dollars(amount: float) -> str:
    """Cents where they matter; the digits that are not zero where an endpoint-hour makes
    prices small ($0.0019 per 1,000 images)."""
    return f"${amount:.2f}" if amount >= 0.1 or amount == 0 else f"${amount:.2g}"
