"""Options several commands share: the provider (from the registry), the run's settings, --json."""

import inspect
import secrets
import time
import tomllib
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from barapi.cli.providers import ProviderChoice, price_of, provider_options

from barapi.config import PRESETS, DataConfig, MethodConfig, PredictionCap, RunConfig, ShapeByApi
from barapi.errors import ConfigError
from barapi.method.portfolio import CANDIDATE_QUERIES, CANDIDATES, DEFAULT_CANDIDATES, DEFAULT_VIEWS, FEW_LABELS
from barapi.method.bases import BASES
from barapi.method.losses import LOSSES
from barapi.method.mapping import MAPPINGS
from barapi.money import Pricing
from barapi.method.estimators import ESTIMATORS
from barapi.method.optim import OPTIMIZERS

def choices(registry: dict) -> str:
    """A strategy flag's choices, as its registry holds them."""
    return ", ".join(registry)



_DEFAULT_METHOD = MethodConfig()
_DEFAULT_DATA = DataConfig()


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
    dataset: Annotated[
        str,
        typer.Option(
            help="'digits' (bundled), 'fashion-mnist' (Debian's dataset-fashion-mnist), a folder with one sub-folder per class, or an .npz (x, y).",
            rich_help_panel="Data",
        ),
    ] = _DEFAULT_DATA.dataset,
    train_per_class: Annotated[
        int, typer.Option(min=1, help="Training images per class.", rich_help_panel="Data")
    ] = _DEFAULT_DATA.train_per_class,
    test_size: Annotated[
        int, typer.Option(min=1, help="Test images.", rich_help_panel="Data")
    ] = _DEFAULT_DATA.test_size,
    preset: Annotated[
        str,
        typer.Option(
            help="Method settings to start from: default (what bench/ found best) or paper (Algorithm 1); the flags below override.",
            rich_help_panel="Method",
        ),
    ] = "default",
    embed_size: Annotated[
        Optional[int],
        typer.Option(
            help=f"Side of the target image in the canvas, px. (preset: {_DEFAULT_METHOD.geometry.embed_size})",
            rich_help_panel="Method",
        ),
    ] = None,
    program_resolution: Annotated[
        Optional[int],
        typer.Option(
            help=f"Side of W per channel (grid points, or cosine frequencies with --program-basis cosine); 0 = one per pixel. (preset: {_DEFAULT_METHOD.geometry.program_resolution or 0})",
            rich_help_panel="Method",
        ),
    ] = None,
    program_basis: Annotated[
        Optional[str],
        typer.Option(
            help=f"How W becomes the canvas, {choices(BASES)}: bilinear is a grid, upsampled; cosine the lowest 2-D frequencies. (preset: {_DEFAULT_METHOD.geometry.basis})",
            rich_help_panel="Method",
        ),
    ] = None,
    visible_size: Annotated[
        Optional[int],
        typer.Option(
            help="Side of the canvas centre the provider's model sees after its own resize and crop, px: the program lives there "
            "(the local server's model: 196 of 224); 0 = the whole canvas. (preset: the whole canvas)",
            rich_help_panel="Method",
        ),
    ] = None,
    iterations: Annotated[
        Optional[int],
        typer.Option(min=0, help=f"Optimiser steps (preset: {_DEFAULT_METHOD.iterations}). With a portfolio: steps refining its chosen views, "
                     "one view after another (default 0).", rich_help_panel="Method"),
    ] = None,
    views: Annotated[
        Optional[int],
        typer.Option(
            min=1, help="Programs each prediction is sent through: V queries per predicted image, read by one readout. "
            f"(default: by the API's label count — {DEFAULT_VIEWS} at most {FEW_LABELS} labels, else 1 — unless a flag of the one "
            f"program's method is given; {DEFAULT_VIEWS} with --candidates or --candidate-family)", rich_help_panel="Portfolio",
        ),
    ] = None,
    candidates: Annotated[
        Optional[int],
        typer.Option(
            min=1, help="Programs whose answers on the training images are paid for, of which the views are chosen by "
            f"cross-validation on the training images. (default: with --views above 1, {DEFAULT_CANDIDATES}; fitted to the API, "
            f"what {CANDIDATE_QUERIES:,} training queries pay for, 16 to {DEFAULT_CANDIDATES})", rich_help_panel="Portfolio",
        ),
    ] = None,
    candidate_family: Annotated[
        Optional[str],
        typer.Option(help=f"How candidates are drawn, {choices(CANDIDATES)}: random programs at three scales; one cosine wave each "
                     "(a frequency band); a colour cast each; or the three in turn. (default: bands, measured best)", rich_help_panel="Portfolio"),
    ] = None,
    candidates_from: Annotated[
        Optional[list[str]],
        typer.Option(metavar="RUN", help="An earlier run on this store (repeatable) whose programs are tried as candidates first, after the start: "
                     "views found on one task, tried on another.", rich_help_panel="Portfolio"),
    ] = None,
    max_usd_per_1k_predictions: Annotated[
        Optional[float],
        typer.Option(min=0, help="Most dollars 1,000 predictions may cost: caps the views at the provider's price.", rich_help_panel="Portfolio"),
    ] = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option(min=1, help=f"Images per step. (preset: {_DEFAULT_METHOD.batch_size})", rich_help_panel="Method"),
    ] = None,
    q: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help=f"Random directions per gradient estimate. (preset: {_DEFAULT_METHOD.q})",
            rich_help_panel="Method",
        ),
    ] = None,
    beta: Annotated[
        Optional[float],
        typer.Option(
            help="Radius of the estimator's perturbation of W. (preset: the radius that moves each coordinate of W by 1.5 grey levels)",
            rich_help_panel="Method",
        ),
    ] = None,
    lr: Annotated[
        Optional[float],
        typer.Option(help=f"Initial step size. (preset: {_DEFAULT_METHOD.lr})", rich_help_panel="Method"),
    ] = None,
    lr_decay: Annotated[
        Optional[float],
        typer.Option(
            help=f"Step size multiplier per iteration. (preset: {_DEFAULT_METHOD.lr_decay})", rich_help_panel="Method"
        ),
    ] = None,
    estimator: Annotated[
        Optional[str],
        typer.Option(
            help=f"{choices(ESTIMATORS)}: one-sided is the paper's; null is a control (the same steps with the losses shuffled, knowing nothing). (preset: {_DEFAULT_METHOD.estimator})",
            rich_help_panel="Method",
        ),
    ] = None,
    optimizer: Annotated[
        Optional[str],
        typer.Option(
            help=f"{choices(OPTIMIZERS)}: sgd is the paper's; nesterov-gc with spsa is SPSA-GC; cma-es samples a population of 2q programs a step (no estimator). (preset: {_DEFAULT_METHOD.optimizer})",
            rich_help_panel="Method",
        ),
    ] = None,
    labels_per_class: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="Source labels averaged per target class (m) by the m-to-1 mappings. (default: 5, or the most the model's labels allow)",
            rich_help_panel="Method",
        ),
    ] = None,
    mapping: Annotated[
        Optional[str],
        typer.Option(
            help=f"{choices(MAPPINGS)}: iterative is re-fitted from paid answers; linear is a readout over every label's score. (preset: {_DEFAULT_METHOD.mapping})",
            rich_help_panel="Method",
        ),
    ] = None,
    loss: Annotated[
        Optional[str], typer.Option(help=f"{choices(LOSSES)}. (preset: {_DEFAULT_METHOD.loss})", rich_help_panel="Method")
    ] = None,
    eval_every: Annotated[
        Optional[int],
        typer.Option(min=0, help="Evaluate every N iterations (0: at the end only).", rich_help_panel="Method"),
    ] = None,
    keep_better_start: Annotated[
        Optional[bool],
        typer.Option(
            help="At the end, serve the starting program if its training answers cross-validate significantly better than the "
            f"trained one's (free: they are cached). (preset: {'on' if _DEFAULT_METHOD.keep_better_start else 'off'})",
            rich_help_panel="Method",
        ),
    ] = None,
    budget: Annotated[
        Optional[float], typer.Option(help="Most dollars this run may spend.", rich_help_panel="Budget")
    ] = None,
    max_queries: Annotated[
        Optional[int], typer.Option(help="Most images this run may send (paid).", rich_help_panel="Budget")
    ] = None,
    price_per_1k: Annotated[
        Optional[float],
        typer.Option(help="Dollars per 1,000 images (overrides the price table).", rich_help_panel="Budget"),
    ] = None,
    price_per_hour: Annotated[
        Optional[float],
        typer.Option(min=0, help="An endpoint billed by the hour (Hugging Face Inference Endpoints, your own KServe or Triton): "
                     "dollars per endpoint-hour, turned into a price per image by the throughput.", rich_help_panel="Budget"),
    ] = None,
    price_per_request: Annotated[
        Optional[float], typer.Option(min=0, help="Dollars per request, where a host charges one (booked per image sent).", rich_help_panel="Budget"),
    ] = None,
    throughput: Annotated[
        Optional[float],
        typer.Option(min=0.001, help="Images/s the endpoint answers, for --price-per-hour (default: measured on a first batch of 16).", rich_help_panel="Budget"),
    ] = None,
    pool: Annotated[
        Optional[str],
        typer.Option(
            help="Also draw on this named budget pool, shared by every run on the store (`barapi pool set NAME --budget N`).",
            rich_help_panel="Budget",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.", rich_help_panel="Run")] = 0,
    name: Annotated[Optional[str], typer.Option(help="Run name (default: generated).", rich_help_panel="Run")] = None,
    config_file: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            help="TOML file of these options (flags given on the command line win).",
            is_eager=True,
            callback=read_config_file,
            rich_help_panel="Run",
        ),
    ] = None,
) -> Callable[[ProviderChoice], RunConfig]:
    """Everything but the provider; the run's configuration once the provider is known (the
    price depends on it)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    views_given = views is not None
    one_program_flags = (iterations, q, beta, lr, lr_decay, estimator, optimizer, loss, mapping, batch_size, eval_every, keep_better_start)
    # Nothing said about the run's shape: it is fitted to the kind of API (barapi.run.planning.shaped).
    portfolio_flags = (views, candidates, candidate_family, candidates_from)
    by_api = preset == "default" and all(v is None for v in portfolio_flags + one_program_flags)
    if not by_api and (views is not None or max_usd_per_1k_predictions is not None or candidate_family is not None or candidates_from):
        views = views or DEFAULT_VIEWS
    if candidates is None and views is not None and views > 1:
        candidates = max(views, DEFAULT_CANDIDATES)
    if iterations is None and candidates is not None and candidates > 1:
        iterations = 0
    chosen = {
        "iterations": iterations,
        "views": views,
        "candidates": candidates,
        "candidate_family": candidate_family,
        "batch_size": batch_size,
        "q": q,
        "beta": beta,
        "lr": lr,
        "lr_decay": lr_decay,
        "estimator": estimator,
        "optimizer": optimizer,
        "loss": loss,
        "mapping": mapping,
        "labels_per_class": labels_per_class,
        "eval_every": eval_every,
        "keep_better_start": keep_better_start,
    }
    geometry = base.geometry.model_dump() | {k: v for k, v in {"embed_size": embed_size, "basis": program_basis}.items() if v is not None}
    geometry |= {k: v or None for k, v in {"program_resolution": program_resolution, "visible_size": visible_size}.items() if v is not None}
    # Validate the merged settings as a whole, so a bad flag gets pydantic's message.
    method = MethodConfig.model_validate(
        base.model_dump() | {k: v for k, v in chosen.items() if v is not None} | {"geometry": geometry}
    )
    data = DataConfig(dataset=dataset, train_per_class=train_per_class, test_size=test_size)

    pricing = None
    if price_per_hour is not None or price_per_request is not None:
        pricing = Pricing(per_hour=price_per_hour, per_request=price_per_request or 0.0, per_1k_images=price_per_1k or 0.0, throughput=throughput)
    elif throughput is not None:
        raise ConfigError("--throughput prices an endpoint billed by the hour: pass --price-per-hour with it")

    def config(choice: ProviderChoice) -> RunConfig:
        provider = choice.for_new_run()
        return RunConfig(
            name=name or f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}",
            seed=seed,
            provider=provider,
            data=data,
            method=method,
            budget_usd=budget,
            max_queries=max_queries,
            pool=pool,
            # An hourly price without a throughput is completed once measured (barapi.run.planning.completed).
            price_per_1k=price_of(provider, price_per_1k) if pricing is None else pricing.per_1k if pricing.complete else 0.0,
            pricing=pricing,
            prediction_cap=None if max_usd_per_1k_predictions is None else PredictionCap(usd_per_1k=max_usd_per_1k_predictions, views_asked=views_given),
            shape_by_api=ShapeByApi() if by_api else None,
            candidates_from=candidates_from or [],
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
        keyword_only(
            [
                inspect.Parameter("provider", inspect.Parameter.KEYWORD_ONLY),
                inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY),
                *own,
            ]
        )
    )
    return with_options(provider_options, "provider")(with_options(run_options, "settings")(joined))


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")]


def classifier_for(config: RunConfig):  # noqa: ANN202 - the Classifier protocol
    from barapi.adapters import build_classifier, client_for

    return build_classifier(config.provider, client_for(config.provider))


def percent(value: float | None, missing: str = "not evaluated (budget)") -> str:
    return missing if value is None else f"{value:.1%}"
