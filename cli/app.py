"""The `barapi` command. Errors are caught here, at the edge: one line on stderr, exit code 1."""


import inspect
import json
import os
import secrets
import sys
import time
import threading
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from barapi.cli.render import ProgressPrinter
from barapi.trainer import Progress
from pydantic import ValidationError

from barapi import __version__
from barapi.checkpoint import load_config
from barapi.classifier import SelectableLabels
from barapi.config import PRESETS, DataConfig, MethodConfig, ProviderConfig, RunConfig
from barapi.errors import BarapiError, BudgetExceeded, ConfigError
from barapi.money import Estimate
from barapi.money import price_per_1k as lookup_price
from barapi.store import Store, home_dir

app = typer.Typer(
    help="Reprogram a black-box image classifier behind a prediction API to solve a new task.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
runs_app = typer.Typer(help="Runs kept under BARAPI_HOME.", no_args_is_help=True)
mock_app = typer.Typer(help="A local server with a real ImageNet model (needs the mock extra).", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(mock_app, name="mock")

EXIT_INTERRUPTED = 130
_DEFAULT_METHOD = MethodConfig()
_DEFAULT_DATA = DataConfig()


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's errors into one clear line and exit code 1 — never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BarapiError as error:
            raise fail(str(error)) from None
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise fail(f"invalid {where or 'option'}: {first['msg']}") from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            # The reader went away (`barapi runs list | head`): nothing left to say, to anyone.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as error:  # noqa: BLE001 - the edge: a bug still gets one line, not locals
            if os.environ.get("BARAPI_DEBUG"):
                raise
            raise fail(f"unexpected {type(error).__name__}: {error} (set BARAPI_DEBUG=1 to see the traceback)") from None

    return wrapper


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"barapi {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[Optional[bool], typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    pass


# -- options shared by several commands ---------------------------------------------------------
DEFAULT_PROVIDER = "torchserve"


@dataclass(frozen=True)
class ProviderChoice:
    """--provider and its options as typed; ``name`` is None when --provider was not given."""

    name: str | None
    options: dict[str, Any]

    def for_new_run(self) -> ProviderConfig:
        return ProviderConfig(name=self.name or DEFAULT_PROVIDER, options=self.options)

    def over(self, stored: ProviderConfig) -> ProviderConfig:
        """A stored run's provider with the flags given now on top (another provider: only them)."""
        if self.name and self.name != stored.name:
            return ProviderConfig(name=self.name, options=self.options)
        return ProviderConfig(name=stored.name, options=stored.options | self.options)


def _provider_flags() -> list[inspect.Parameter]:
    """--provider, then one flag per option any provider declares (the registry's typed
    options), each saying which providers take it."""
    from barapi.adapters import providers

    fields: dict[str, tuple[Any, list[str]]] = {}
    for chosen in providers().values():
        for name, field in chosen.options.model_fields.items():
            fields.setdefault(name, (field, []))[1].append(chosen.name)
    names = ", ".join(f"{p.name} ({p.summary})" for p in providers().values())
    flags = [inspect.Parameter("provider", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[str], typer.Option(help=f"{names}. (default: {DEFAULT_PROVIDER}; predict: the run's own)", rich_help_panel="Provider")])]
    for name, (field, owners) in fields.items():
        kind = next(t for t in typing.get_args(field.annotation) or (field.annotation,) if t is not type(None))
        kind = Path if name == "key_file" else kind
        only = "" if len(owners) == len(providers()) else f" [{', '.join(owners)}]"
        option = typer.Option(help=(field.description or "") + only, rich_help_panel="Provider")
        default = False if kind is bool else None
        flags.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind if kind is bool else Optional[kind], option]))
    return flags


def provider_options(provider: str | None = None, **flags: Any) -> ProviderChoice:
    """--provider and the flags given; each provider checks its own (typed) on use."""
    if flags.get("key_file"):
        flags["key_file"] = str(Path(flags["key_file"]).expanduser().resolve())
    return ProviderChoice(provider, {k: v for k, v in flags.items() if v is not None and v is not False})


provider_options.__signature__ = inspect.Signature(_provider_flags())  # type: ignore[attr-defined]


def price_of(provider: ProviderConfig, override: float | None = None) -> float:
    from barapi.adapters import model_id, providers

    listed = providers()[provider.name].price_per_1k if provider.name in providers() else None
    return lookup_price(provider.name, model_id(provider), listed=listed, override=override, price_file=Store.price_file())


def read_config_file(ctx: typer.Context, value: Optional[Path]) -> Optional[Path]:
    """--config run.toml: its keys become the command's defaults (click's default_map), so a flag
    typed on the command line still wins. Keys are flag names (`train-per-class` or
    `train_per_class`), at the top level or in tables named after the help panels."""
    if value is None or ctx.resilient_parsing:
        return value
    try:
        document = tomllib.loads(value.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise typer.BadParameter(f"cannot read {value}: {error}") from None
    settings: dict[str, Any] = {}
    for key, item in document.items():
        settings |= item if isinstance(item, dict) else {key: item}
    known = {p.name: p for p in ctx.command.params}
    defaults = {}
    for key, item in settings.items():
        name = key.replace("-", "_")
        if name not in known or name == "config_file":
            raise typer.BadParameter(f"{value}: unknown setting {key!r} (see `barapi {ctx.info_name} --help`)")
        defaults[name] = item
    ctx.default_map = (ctx.default_map or {}) | defaults
    return value


def run_options(
    dataset: Annotated[str, typer.Option(help="'digits' (bundled), 'fashion-mnist' (Debian's dataset-fashion-mnist), a folder with one sub-folder per class, or an .npz (x, y).", rich_help_panel="Data")] = _DEFAULT_DATA.dataset,
    train_per_class: Annotated[int, typer.Option(min=1, help="Training images per class.", rich_help_panel="Data")] = _DEFAULT_DATA.train_per_class,
    test_size: Annotated[int, typer.Option(min=1, help="Test images.", rich_help_panel="Data")] = _DEFAULT_DATA.test_size,
    preset: Annotated[str, typer.Option(help="Method settings to start from: default (what bench/ found best) or paper (Algorithm 1); the flags below override.", rich_help_panel="Method")] = "default",
    embed_size: Annotated[Optional[int], typer.Option(help=f"Side of the target image in the canvas, px. (preset: {_DEFAULT_METHOD.geometry.embed_size})", rich_help_panel="Method")] = None,
    program_resolution: Annotated[Optional[int], typer.Option(help=f"Side of W per channel (upsampled to the canvas); 0 = full resolution. (preset: {_DEFAULT_METHOD.geometry.program_resolution or 0})", rich_help_panel="Method")] = None,
    iterations: Annotated[Optional[int], typer.Option(min=1, help=f"Optimiser steps. (preset: {_DEFAULT_METHOD.iterations})", rich_help_panel="Method")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help=f"Images per step. (preset: {_DEFAULT_METHOD.batch_size})", rich_help_panel="Method")] = None,
    q: Annotated[Optional[int], typer.Option(min=1, help=f"Random directions per gradient estimate. (preset: {_DEFAULT_METHOD.q})", rich_help_panel="Method")] = None,
    beta: Annotated[Optional[float], typer.Option(help=f"Smoothing (perturbation size) of the estimator. (preset: {_DEFAULT_METHOD.beta})", rich_help_panel="Method")] = None,
    lr: Annotated[Optional[float], typer.Option(help=f"Initial step size. (preset: {_DEFAULT_METHOD.lr})", rich_help_panel="Method")] = None,
    lr_decay: Annotated[Optional[float], typer.Option(help=f"Step size multiplier per iteration. (preset: {_DEFAULT_METHOD.lr_decay})", rich_help_panel="Method")] = None,
    estimator: Annotated[Optional[str], typer.Option(help=f"one-sided (the paper), two-sided or spsa. (preset: {_DEFAULT_METHOD.estimator})", rich_help_panel="Method")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help=f"adam, sgd (the paper), sign-sgd or nesterov-gc (with spsa: SPSA-GC). (preset: {_DEFAULT_METHOD.optimizer})", rich_help_panel="Method")] = None,
    labels_per_class: Annotated[Optional[int], typer.Option(min=1, help="Source labels averaged per target class (m) by the m-to-1 mappings. (default: 5, or the most the model's labels allow)", rich_help_panel="Method")] = None,
    mapping: Annotated[Optional[str], typer.Option(help=f"frequency, random, iterative (re-fitted from paid answers) or linear (a readout over every label's score). (preset: {_DEFAULT_METHOD.mapping})", rich_help_panel="Method")] = None,
    loss: Annotated[Optional[str], typer.Option(help=f"focal or ce. (preset: {_DEFAULT_METHOD.loss})", rich_help_panel="Method")] = None,
    eval_every: Annotated[Optional[int], typer.Option(min=0, help="Evaluate every N iterations (0: at the end only).", rich_help_panel="Method")] = None,
    budget: Annotated[Optional[float], typer.Option(help="Most dollars this run may spend.", rich_help_panel="Budget")] = None,
    max_queries: Annotated[Optional[int], typer.Option(help="Most images this run may send (paid).", rich_help_panel="Budget")] = None,
    price_per_1k: Annotated[Optional[float], typer.Option(help="Dollars per 1,000 images (overrides the price table).", rich_help_panel="Budget")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.", rich_help_panel="Run")] = 0,
    name: Annotated[Optional[str], typer.Option(help="Run name (default: generated).", rich_help_panel="Run")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file of these options (flags given on the command line win).", is_eager=True, callback=read_config_file, rich_help_panel="Run")] = None,
) -> Callable[[ProviderChoice], RunConfig]:
    """Everything but the provider; the run's configuration once the provider is known (the
    price depends on it)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    chosen = {
        "iterations": iterations, "batch_size": batch_size, "q": q, "beta": beta, "lr": lr, "lr_decay": lr_decay,
        "estimator": estimator, "optimizer": optimizer, "loss": loss, "mapping": mapping,
        "labels_per_class": labels_per_class, "eval_every": eval_every,
    }
    geometry = base.geometry.model_dump() | {k: v for k, v in {"embed_size": embed_size}.items() if v is not None}
    if program_resolution is not None:
        geometry["program_resolution"] = program_resolution or None
    # Validate the merged settings as a whole, so a bad flag gets pydantic's message.
    method = MethodConfig.model_validate(base.model_dump() | {k: v for k, v in chosen.items() if v is not None} | {"geometry": geometry})
    data = DataConfig(dataset=dataset, train_per_class=train_per_class, test_size=test_size)

    def config(choice: ProviderChoice) -> RunConfig:
        provider = choice.for_new_run()
        return RunConfig(
            name=name or f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}", seed=seed, provider=provider,
            data=data, method=method, budget_usd=budget, max_queries=max_queries, price_per_1k=price_of(provider, price_per_1k),
        )

    return config


def keyword_only(parameters: Any) -> list[inspect.Parameter]:
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters]


def with_options(builder: Callable[..., Any], into: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every option of ``builder`` besides its own, declared once (Typer reads
    the signature); the command receives what the builder made as ``into``."""
    shared = keyword_only(inspect.signature(builder).parameters.values())

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = keyword_only(p for p in inspect.signature(command).parameters.values() if p.name != into)

        @wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            built = builder(**{p.name: kwargs.pop(p.name) for p in shared})
            return command(**{into: built}, **kwargs)

        wrapper.__signature__ = inspect.Signature(shared + own)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """train and estimate: the provider and run options, joined into one RunConfig as ``config``."""

    @wraps(command)
    def joined(provider: ProviderChoice, settings: Callable[[ProviderChoice], RunConfig], **kwargs: Any) -> Any:
        return command(config=settings(provider), **kwargs)

    own = [p for p in inspect.signature(command).parameters.values() if p.name != "config"]
    joined.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        keyword_only([inspect.Parameter("provider", inspect.Parameter.KEYWORD_ONLY), inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY), *own])
    )
    return with_options(provider_options, "provider")(with_options(run_options, "settings")(joined))


# -- commands --------------------------------------------------------------------------------
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")]


@app.command()
@friendly
@with_run_options
def estimate(config: RunConfig, as_json: JsonOption = False) -> None:
    """Queries and dollars a run would cost, before anything is spent."""
    from barapi.planning import estimate_run

    store = Store()
    figures = estimate_run(config, _classifier(config), store)
    _print_estimate(figures, as_json)


@app.command()
@friendly
@with_run_options
def train(
    config: RunConfig,
    as_json: JsonOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before spending past the budget.")] = False,
) -> None:
    """Train a program: embed, query, estimate gradients, step — within the budget."""
    from barapi.planning import estimate_run

    store = Store()
    if store.has_run(config.name):
        raise ConfigError(f"a run named {config.name!r} exists: continue it with `barapi resume {config.name}` or pick another --name")
    from barapi.data import run_split

    classifier = _classifier(config)
    split = run_split(config)  # decoded once, for the estimate and the training
    figures = estimate_run(config, classifier, store, split)
    if not as_json:
        _print_estimate(figures, as_json=False)
    _confirm_spend(config, figures, yes)
    _execute(config, classifier, store, as_json, split)


@app.command()
@friendly
def resume(
    run: Annotated[str, typer.Argument(help="Run name (see `barapi runs list`).")],
    budget: Annotated[Optional[float], typer.Option(help="Raise the run's dollar budget.")] = None,
    max_queries: Annotated[Optional[int], typer.Option(help="Raise the run's query cap.")] = None,
    iterations: Annotated[Optional[int], typer.Option(min=1, help="Train to this many iterations in all (extends a finished run).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Carry on an interrupted run exactly where it stopped; paid responses come from the cache."""
    store = Store()
    config = load_config(store, run)
    updates = {k: v for k, v in {"budget_usd": budget, "max_queries": max_queries}.items() if v is not None}
    if iterations is not None:
        updates["method"] = config.method.model_copy(update={"iterations": iterations})
    config = config.model_copy(update=updates)
    _execute(config, _classifier(config), store, as_json)


def _classifier(config: RunConfig):  # noqa: ANN202 - the Classifier protocol
    from barapi.adapters import build_classifier, client_for

    return build_classifier(config.provider, client_for(config.provider))


def _execute(config: RunConfig, classifier: Any, store: Store, as_json: bool, split: Any = None) -> None:
    from barapi.trainer import Trainer

    printer = ProgressPrinter(quiet=as_json)
    trainer = Trainer(config, classifier, store, on_progress=printer, split=split)
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        printer.finish()
        trainer.mark("interrupted")
        typer.echo(f"interrupted: progress is checkpointed; carry on with `barapi resume {config.name}`", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BudgetExceeded as error:
        printer.finish()
        trainer.mark("budget_exhausted")
        raise fail(f"{error} (run {config.name})") from None
    except BaseException:
        printer.finish()
        trainer.mark("failed")
        raise
    printer.finish()
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    typer.echo(
        f"run {result.run}: {result.status} after {result.iterations} iterations — "
        f"test accuracy {_pct(result.test_accuracy)}, train accuracy {_pct(result.train_accuracy)}, "
        f"{result.queries_paid:,} queries paid + {result.queries_cached:,} from cache, ${result.cost_usd:.4f}"
        + (f" of ${result.budget_usd:.2f}" if result.budget_usd is not None else "")
    )


def _pct(value: float | None, missing: str = "not evaluated (budget)") -> str:
    return missing if value is None else f"{value:.1%}"


def _print_estimate(figures: Estimate, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(figures.as_json()))
        return
    q = figures.as_json()["queries"]
    readout = f" + {q['readout']:,} readout" if q["readout"] else ""
    labels = f"{figures.vocabulary:,} labels published" if figures.vocabulary else "its labels are learnt from the label mapping's first answer"
    typer.echo(
        f"estimate: {q['label_mapping']:,} label mapping + {q['training']:,} training{readout} + {q['evaluation']:,} evaluation "
        f"= {q['total']:,} queries ({q['cached']:,} already cached) → ${figures.cost_usd:.2f} at ${figures.price_per_1k:.2f}/1k; "
        f"the model: {labels}",
        err=True,
    )
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


@app.command("eval")
@friendly
def evaluate(
    run: Annotated[str, typer.Argument(help="Run name (see `barapi runs list`).")],
    dataset: Annotated[Optional[str], typer.Option(help="Evaluate on this dataset (same class names) instead of the run's test split.")] = None,
    budget: Annotated[Optional[float], typer.Option(help="Raise the run's dollar budget for this evaluation.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Accuracy, per-class accuracy and confusion matrix of a run's program; queries go through
    the budget, cache and ledger like any other."""
    from barapi.data import load_dataset
    from barapi.evaluation import report
    from barapi.trainer import Trainer

    store = Store()
    config = load_config(store, run)
    if budget is not None:
        config = config.model_copy(update={"budget_usd": budget})
    trainer = Trainer(config, _classifier(config), store, record_status=False)
    paid_before, cost_before = trainer.budget.spent_queries, trainer.budget.spent_usd
    images, labels = trainer.split.x_test, trainer.split.y_test
    if dataset is not None:
        images, labels, classes = load_dataset(dataset, embed_size=config.method.geometry.embed_size)
        if classes != trainer.split.classes:
            raise ConfigError(f"{dataset} has classes {classes}, but run {run!r} was trained on {trainer.split.classes}")
    printer = ProgressPrinter(quiet=as_json)
    answered, lock = [0], threading.Lock()

    def tick(count: int) -> None:
        with lock:
            answered[0] += count
            printer(Progress("evaluating", min(answered[0], len(labels)), len(labels), None, None, None,
                             trainer.budget.spent_queries, trainer.engine.queries_cached, trainer.budget.spent_usd, 0.0))

    trainer.engine.meter.on_answered = tick
    try:
        truth, predicted = trainer.evaluate(images, labels)
    finally:
        printer.finish()
    figures = report(truth, predicted, trainer.split.classes) | {
        "queries_paid": trainer.budget.spent_queries - paid_before,
        "cost_usd": round(trainer.budget.spent_usd - cost_before, 6),
    }
    if as_json:
        typer.echo(json.dumps(figures))
        return
    typer.echo(f"accuracy {figures['accuracy']:.1%} on {len(truth)} images ({figures['queries_paid']:,} queries paid, ${figures['cost_usd']:.4f})")
    for name, row in figures["per_class"].items():
        typer.echo(f"  {name:>12}: {_pct(row['accuracy'])} of {row['support']}")
    if "sensitivity" in figures:
        typer.echo(f"  sensitivity {_pct(figures['sensitivity'])}, specificity {_pct(figures['specificity'])}")
    typer.echo("confusion (rows: truth, columns: predicted):")
    for name, row in zip(trainer.split.classes, figures["confusion"]):
        typer.echo(f"  {name:>12}: " + " ".join(f"{n:4d}" for n in row))


@app.command()
@friendly
@with_options(provider_options, "provider")
def predict(
    provider: ProviderChoice,
    targets: Annotated[list[str], typer.Argument(metavar="[RUN] IMAGE...", help="The run whose program to apply (omit it with --program), then the image files.", show_default=False)],
    program: Annotated[Optional[Path], typer.Option(help="Folder written by `barapi export` instead of a run: works without the database that trained it.")] = None,
    budget: Annotated[Optional[float], typer.Option(help="Most dollars these predictions may spend.", rich_help_panel="Budget")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image on stdout.")] = False,
) -> None:
    """Apply a learned program and label mapping to new images through the same provider."""
    from barapi.artifact import LearnedProgram
    from barapi.data import read_image
    from barapi.money import Budget
    from barapi.queries import QueryEngine

    run, names = (None, targets) if program is not None else (targets[0], targets[1:])
    if not names:
        raise ConfigError("no image to classify: barapi predict RUN IMAGE... (or --program DIR IMAGE...)")
    images = [Path(name) for name in names]
    store = Store()
    if program is not None:
        learned, ledger_name = LearnedProgram.load(program), None
    else:
        learned, ledger_name = LearnedProgram.from_run(store, run, _run_classes(store, run)), run
    provider_config = provider.over(learned.config.provider)
    price = learned.config.price_per_1k if provider_config == learned.config.provider else price_of(provider_config)
    targets = np.stack([read_image(path, learned.geometry.embed_size) for path in images])
    classifier = _classifier(learned.config.model_copy(update={"provider": provider_config}))
    if isinstance(classifier, SelectableLabels) and learned.mapped_labels:
        classifier.restrict_to(learned.mapped_labels)  # top-k truncation never hides a mapped label
    # The ledger books these queries to the run (or to the exported program), like any other.
    spending = Budget(max_usd=budget, max_queries=None, per_1k=price)
    engine = QueryEngine(classifier, store, spending, ledger_name or f"predict-{learned.sha256[:12]}")
    cached_before = engine.queries_cached
    shares = learned.predict(engine, targets)
    for path, row in zip(images, shares):
        best = int(np.argmax(row))
        if as_json:
            scores = {c: round(float(v), 6) for c, v in zip(learned.classes, row)}
            typer.echo(json.dumps({"image": str(path), "class": learned.classes[best], "score": scores[learned.classes[best]], "scores": scores}))
        else:
            typer.echo(f"{path}: {learned.classes[best]} ({row[best]:.1%})")
    if not as_json:
        typer.echo(f"{spending.spent_queries:,} queries paid, {engine.queries_cached - cached_before:,} from cache, ${spending.spent_usd:.4f}", err=True)


@app.command()
@friendly
def export(
    run: Annotated[str, typer.Argument(help="Run name (see `barapi runs list`).")],
    out: Annotated[Path, typer.Option(help="Folder to write the artifact into.")],
) -> None:
    """Write a run's program as a portable artifact: program.npz, mapping.json, config.json,
    program.png and example-*.png (what the API sees). `barapi predict --program DIR` uses it."""
    from barapi.artifact import LearnedProgram
    from barapi.data import run_split

    store = Store()
    config = load_config(store, run)
    split = run_split(config)
    learned = LearnedProgram.from_run(store, run, split.classes)
    # One example per class while there are classes, so the pictures show different targets.
    firsts = [int(np.flatnonzero(split.y_test == c)[0]) for c in range(split.n_classes) if np.any(split.y_test == c)]
    written = learned.save(out, split.x_test[firsts])
    typer.echo(f"exported run {run} (program {learned.sha256[:12]}) to {out}: " + ", ".join(p.name for p in written))


def _run_classes(store: Store, run: str) -> list[str]:
    from barapi.data import dataset_classes

    return dataset_classes(load_config(store, run).data.dataset)


@runs_app.command("list")
@friendly
def runs_list(as_json: JsonOption = False) -> None:
    """Every run with its status and spend."""
    from barapi.planning import run_summary

    summaries = [run_summary(Store(), record) for record in Store().list_runs()]
    if as_json:
        typer.echo(json.dumps(summaries))
        return
    if not summaries:
        typer.echo("no runs yet: `barapi train` starts one")
    for s in summaries:
        typer.echo(f"{s['name']:<32} {s['status']:<17} iter {s['iterations']:>5}  test {_pct(s['test_accuracy']):>8}  ${s['cost_usd']:.4f}")


PlotOption = Annotated[Optional[Path], typer.Option(help="Also draw loss and test accuracy against queries and dollars into this .png/.svg/.pdf (needs barapi[plot]).")]


@runs_app.command("show")
@friendly
def runs_show(run: Annotated[str, typer.Argument(help="Run name.")], plot: PlotOption = None, as_json: JsonOption = False) -> None:
    """A run's status, figures and configuration."""
    from barapi.planning import run_summary

    store = Store()
    summary = run_summary(store, store.get_run(run))
    if plot is not None:
        _plot(store, [run], plot)
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
    from barapi.planning import run_summary

    store = Store()
    summaries = [run_summary(store, store.get_run(run)) for run in runs]
    if plot is not None:
        _plot(store, runs, plot)
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in s.items() if k != "config"} for s in summaries]))
        return
    typer.echo(f"{'run':<32} {'status':<17} {'iter':>5} {'queries':>9} {'dollars':>9} {'train':>8} {'test':>8}")
    for s in summaries:
        typer.echo(f"{s['name']:<32} {s['status']:<17} {s['iterations']:>5} {s['queries_paid']:>9,} {s['cost_usd']:>9.4f} "
                   f"{_pct(s['train_accuracy'], '—'):>8} {_pct(s['test_accuracy'], '—'):>8}")


def _plot(store: Store, runs: list[str], path: Path) -> None:
    from barapi.cli.plots import plot_runs

    plot_runs({run: store.metrics(run) for run in runs}, path)
    typer.echo(f"wrote {path}", err=True)


@mock_app.command("serve")
@friendly
def mock_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    model: Annotated[str, typer.Option(help="efficientnet-lite0, -lite1 or -lite2.")] = "efficientnet-lite0",
    topk: Annotated[int, typer.Option(help="Labels per answer; 0 = all 1,000 (TorchServe's stock handler uses 5).")] = 0,
    fail_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction of requests answered 500.")] = 0.0,
    throttle_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction answered 429 with Retry-After.")] = 0.0,
    latency_ms: Annotated[float, typer.Option(min=0, help="Added latency per request.")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction held for --hang-s, then dropped unanswered.")] = 0.0,
    reset_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction whose connection is reset (RST).")] = 0.0,
    truncate_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction answered with a body cut short of its Content-Length.")] = 0.0,
    hang_s: Annotated[float, typer.Option(min=0, help="How long a 'timeout' fault holds the request.")] = 2.0,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the fault injection.")] = None,
    api_key: Annotated[str, typer.Option(envvar="BARAPI_MOCK_KEY", help="Key the Clarifai and Azure routes accept.")] = "mock-key",
    project: Annotated[Optional[list[str]], typer.Option(help="Also serve a project trained on a dataset, as Custom Vision makes one: NAME=DATASET (any --dataset spec; fitted once, cached under BARAPI_HOME). Repeatable.")] = None,
) -> None:
    """Serve a real ImageNet model, and few-label models over it (coarse-2, coarse-5, coarse-10,
    trained projects), over the TorchServe, Clarifai and Azure Custom Vision APIs."""
    try:
        from barapi.mock.heads import parse_project, trained_project
        from barapi.mock.model import ImageNetModel
        from barapi.mock.server import Faults, MockServer
    except ImportError as error:
        raise ConfigError(f"the mock server needs its extra: pip install 'barapi[mock]' ({error})") from error
    typer.echo(f"loading {model} (exported to ONNX under BARAPI_HOME on first use)…", err=True)
    network = ImageNetModel(model)
    projects = tuple(trained_project(*parse_project(spec), network.classify, network.name, network.size, home_dir()) for spec in project or [])
    try:
        server = MockServer(host, port, network, topk=topk or None, faults=Faults(fail_rate, throttle_rate, latency_ms, seed, timeout_rate, reset_rate, truncate_rate, hang_s), api_key=api_key, projects=projects)
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error}; pick another --port") from error
    typer.echo(f"serving {', '.join(server.models)} on http://{host}:{server.server_address[1]} (TorchServe, Clarifai v2 and Azure Custom Vision APIs; Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main() -> None:
    app()
