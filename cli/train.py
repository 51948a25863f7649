"""estimate, probe, train, resume."""

import json
import sys
from collections.abc import Callable
from typing import Annotated, Optional

import typer
from barapi import api
from barapi.cli.app import EXIT_INTERRUPTED, app, fail, friendly
from barapi.cli.options import JsonOption, percent, with_run_options
from barapi.cli.render import ProgressPrinter, dollars

from barapi.config import RunConfig
from barapi.errors import BudgetExceeded, ConfigError
from barapi.money import Estimate
from barapi.method.gain import MIN_PER_CLASS
from barapi.method.portfolio import FEW_LABELS, refinement_blocks
from barapi.method.signal import SignalReading


@app.command()
@friendly
@with_run_options
def estimate(config: RunConfig, as_json: JsonOption = False) -> None:
    """Queries and dollars a run would cost, before anything is spent."""
    _print_estimate(api.estimate(config), as_json)


@app.command()
@friendly
@with_run_options
def probe(config: RunConfig, as_json: JsonOption = False) -> None:
    """Before the money: pay for a few candidate programs' answers on the training images (at most
    1,000 queries) and say whether the API adds to your images alone; `train` with the same flags
    then finds them in the cache."""
    result = api.probe(config)
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    free, gain = result.free_baseline, result.api_gain
    typer.echo(f"probe {result.run}: {result.candidates} candidate programs, {result.queries_paid:,} queries paid + "
               f"{result.queries_cached:,} from cache, {dollars(result.cost_usd)}")
    if gain is None:
        typer.echo(f"{result.verdict}: some class has fewer than {MIN_PER_CLASS} training images")
        return
    typer.echo(f"your images alone: {free['cv_accuracy']:.1%} ({described(free)}, cross-validated); the API's answers add "
               f"{100 * gain['cv_accuracy']:+.1f} ± {100 * gain['se']:.1f} points to them (judged on training images their choice did not see)")
    typer.echo(f"verdict: {result.verdict}; the full run: {result.full_run['queries']:,} queries, {dollars(result.full_run['cost_usd'])}, then "
               f"{dollars(result.full_run['usd_per_1k_predictions'])} per 1,000 predicted images")


@app.command()
@friendly
@with_run_options
def train(
    config: RunConfig,
    as_json: JsonOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before spending past the budget.")] = False,
) -> None:
    """Train a program: embed, query, estimate gradients, step — within the budget."""

    def before_spending(completed: RunConfig, figures: Estimate) -> None:
        if not as_json:
            _print_estimate(figures, as_json=False)
        _confirm_spend(completed, figures, yes)

    _report(lambda printer: api.train(config, on_progress=printer, before_spending=before_spending), config.name, as_json)


@app.command()
@friendly
def resume(
    run: Annotated[str, typer.Argument(help="Run name (see `barapi runs list`).")],
    budget: Annotated[Optional[float], typer.Option(help="Raise the run's dollar budget.")] = None,
    max_queries: Annotated[Optional[int], typer.Option(help="Raise the run's query cap.")] = None,
    iterations: Annotated[
        Optional[int], typer.Option(min=1, help="Train to this many iterations in all (extends a finished run).")
    ] = None,
    views: Annotated[
        Optional[int], typer.Option(min=1, help="A portfolio: serve this many views (chosen again; cached answers are reused).")
    ] = None,
    candidates: Annotated[
        Optional[int], typer.Option(min=1, help="A portfolio: try this many candidate programs in all (those paid for are reused).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Carry on an interrupted run exactly where it stopped; paid responses come from the cache."""
    changes = {"budget": budget, "max_queries": max_queries, "iterations": iterations, "views": views, "candidates": candidates}
    _report(lambda printer: api.resume(run, on_progress=printer, **changes), run, as_json)


def _report(execute: Callable[[ProgressPrinter], api.Run], name: str, as_json: bool) -> None:
    """Run the library's training with the live line as its progress callback, then say how it ended."""
    printer = ProgressPrinter(quiet=as_json)
    try:
        run = execute(printer)
    except KeyboardInterrupt:
        printer.finish()
        typer.echo(f"interrupted: progress is checkpointed; carry on with `barapi resume {name}`", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BudgetExceeded as error:
        printer.finish()
        raise fail(f"{error} (run {name})") from None
    finally:
        printer.finish()
    result, config = run.result, run.config
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    portfolio = result.candidates_paid is not None
    steps = f" after {result.iterations} iterations" if result.iterations or not portfolio else ""
    training = "" if portfolio else f", train accuracy {percent(result.train_accuracy)}"
    typer.echo(
        f"run {result.run}: {result.status}{steps} — test accuracy {percent(result.test_accuracy)}{training}, "
        f"{result.queries_paid:,} queries paid + {result.queries_cached:,} from cache, ${result.cost_usd:.4f}"
        + (f" of ${result.budget_usd:.2f}" if result.budget_usd is not None else "")
    )
    if portfolio:
        served = f"each prediction sends {result.queries_per_prediction} queries" if result.views else "none served (below)"
        typer.echo(
            f"the portfolio: {config.method.views} view(s) chosen of {result.candidates_paid} candidate programs (cross-validated log-loss "
            f"{result.validation_loss:.3f} on the training images); {served}: "
            f"{dollars(result.queries_per_prediction * config.price_per_1k)} per 1,000 predicted images"
        )
    if result.api_gain is not None:
        gain = result.api_gain
        verdict = "add" if gain["beyond_noise"] else "add nothing beyond noise:"
        judged = ("on training images their choice did not see" if portfolio else
                  "on the training images; optimistic: the program was stepped on them" if gain["optimistic"] else "on the training images")
        typer.echo(
            f"what the API adds: your images alone reach {result.free_baseline['cv_accuracy']:.1%} ({described(result.free_baseline)}); the API's "
            f"answers {verdict} {100 * gain['cv_accuracy']:+.1f} ± {100 * gain['se']:.1f} points (cross-validated {judged}), for "
            f"{dollars(gain['usd_per_1k_predictions'])} per 1,000 predicted images"
        )
        if portfolio and not result.views:
            typer.echo("so barapi serves your images' own readout: a prediction sends no query (--free-views none serves the API's views)")
    if result.step_signal is not None:
        reading = SignalReading(result.step_signal, result.step_signal_expected, result.step_signal_null_sd)
        if portfolio:
            blocks = refinement_blocks(result.iterations, result.views)
            typer.echo(f"the last refined view's steps: {reading.describe(int(blocks[-1] - blocks[-2]))}")
        else:
            typer.echo(f"the program's steps: {reading.describe(result.iterations)}")
    if result.selection is not None:
        kept = result.selection["kept"]
        typer.echo(
            f"the closing pass kept the {'starting' if kept == 'start' else 'trained'} program: the training answers "
            f"cross-validate at {result.selection['start_heldout_accuracy']:.1%} at the start, "
            f"{result.selection['trained_heldout_accuracy']:.1%} trained"
            + (" (training lost, as far as 100 training images can tell: bench/results/fewlabel.md finds them often wrong)" if kept == "start" else "")
        )


def _print_estimate(figures: Estimate, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    q = figures.as_json()["queries"]
    readout = f" + {q['readout']:,} readout" if q["readout"] else ""
    candidates = f" + {q['candidates']:,} candidate programs" if q["candidates"] else ""
    labels = (
        f"{figures.vocabulary:,} labels published"
        if figures.vocabulary
        else "its labels are learnt from the label mapping's first answer"
    )
    training = f" + {q['training']:,} training" if q["training"] or not q["candidates"] else ""
    typer.echo(
        f"estimate: {q['label_mapping']:,} label mapping{training}{candidates}{readout} + {q['evaluation']:,} evaluation "
        f"= {q['total']:,} queries ({q['cached']:,} already cached) → {dollars(figures.cost_usd)} at {dollars(figures.price_per_1k)}/1k; "
        f"the model: {labels}",
        err=True,
    )
    typer.echo(
        f"each prediction: {figures.views} quer{'y' if figures.views == 1 else 'ies'} → {dollars(figures.usd_per_1k_predictions)} per 1,000 predicted images",
        err=True,
    )
    if figures.fitted_to_labels is not None:
        measured = "portfolio" if figures.fitted_to_labels <= FEW_LABELS else "value"
        typer.echo(f"shape: {figures.views} views chosen of {figures.candidate_programs} candidate programs, the default for an API of "
                   f"{figures.fitted_to_labels:,} labels (bench/results/{measured}.md); --views 1 --iterations 20 for one program taught by steps",
                   err=True)
    free = figures.free_baseline
    if free and free["cv_accuracy"] is not None:
        typer.echo(f"your images alone: {free['cv_accuracy']:.1%} from {described(free)}, cross-validated on the training images "
                   "(no query): what the API has to add to be worth paying for", err=True)
    if figures.pricing:
        typer.echo(f"price: {figures.pricing.describe()}", err=True)
    if figures.notice:
        typer.echo(f"note: {figures.notice}", err=True)


def _confirm_spend(config: RunConfig, figures: Estimate, yes: bool) -> None:
    over_budget = config.budget_usd is not None and figures.cost_usd > config.budget_usd
    if yes or not over_budget:
        return
    question = f"the estimate (${figures.cost_usd:.2f}) exceeds the budget (${config.budget_usd:.2f}); training stops when the budget runs out. Continue?"
    if not sys.stdin.isatty():
        raise ConfigError(f"{question.split(';')[0]}: refusing without a terminal to ask; pass --yes to train anyway")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


FREE_VIEW_WORDS = {"pixels": "their pixels", "local": "an open network's features"}


def described(free: dict) -> str:
    """The free views a baseline was read from, in words."""
    return " and ".join(FREE_VIEW_WORDS.get(view.partition("=")[0], view) for view in free["views"])
