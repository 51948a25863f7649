"""barapi from Python: the verbs a CLI user has, taking the same settings as keyword arguments
(``train_per_class=50`` is ``--train-per-class 50``) and returning objects. The CLI is a client
of this module, so equal settings give equal runs from both.

    import barapi

    run = barapi.train(provider="local", dataset="digits", budget=1.0)
    run.test_accuracy, run.program_sha256, run.cost_usd
    run.predict(["a.png", "b.png"]).labels
    run.export("my-program")
    barapi.load("my-program").predict(images)

Where a provider is needed it is built from ``provider=`` and the provider's own options
(``base_url=``, ``model=``, ``key_file=``; keys come from the environment, never an argument).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from barapi.classifier import Classifier
from barapi.config import PRESETS, MethodConfig, PredictionCap, ProviderConfig, RunConfig, ShapeByApi
from barapi.errors import BudgetExceeded, ConfigError
from barapi.money import Estimate, Pricing
from barapi.method.portfolio import DEFAULT_CANDIDATES, DEFAULT_VIEWS
from barapi.run.records import ProbeResult, Progress, RunResult
from barapi.settings import SETTINGS, nested
from barapi.store import Store

__all__ = [
    "Estimate", "ExportedProgram", "Predictions", "ProbeResult", "Progress", "Run", "RunResult",
    "configure", "estimate", "load", "probe", "resume", "runs", "train",
]

DEFAULT_PROVIDER = "torchserve"
# Settings that ask for a portfolio: given without --views, they get the default number of views.
PORTFOLIO_SETTINGS = ("views", "max_usd_per_1k_predictions", "candidate_family", "candidates_from")

ProgressCallback = Callable[[Progress], None]
# Called with the completed config and its estimate before any training query: raise to stop.
SpendCheck = Callable[[RunConfig, Estimate], None]


def provider_option_names() -> set[str]:
    """Every option some provider declares (each provider checks its own on use)."""
    from barapi.adapters import providers

    return {name for p in providers().values() for name in p.options.model_fields}


def configure(config: RunConfig | dict | None = None, /, *, provider: str | None = None, **settings: Any) -> RunConfig:
    """A run's configuration from settings as the CLI takes them, with the default run shape
    decided here: a run that says nothing of its shape is fitted to the API's label count when it
    starts (``barapi.run.planning.shaped``); a portfolio setting brings the default views and
    candidates. ``None`` (and a provider flag's ``False``) means "not given"."""
    if config is not None:
        if settings or provider:
            raise ConfigError("pass a config or settings, not both")
        return config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
    options = provider_option_names() - SETTINGS.keys()
    provider_given = {k: settings.pop(k) for k in list(settings) if k in options}
    given = {k: v for k, v in settings.items() if v is not None and v != []}
    preset = given.get("preset", "default")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    by_api = preset == "default" and not any(SETTINGS[k].shapes_run for k in given if k in SETTINGS)
    views_asked = "views" in given  # by the user: a cap then refuses what it cannot pay, not lowers it
    if not by_api and any(k in given for k in PORTFOLIO_SETTINGS):
        given.setdefault("views", DEFAULT_VIEWS)
    if "candidates" not in given and given.get("views", 1) > 1:
        given["candidates"] = max(given["views"], DEFAULT_CANDIDATES)
    if "iterations" not in given and given.get("candidates", 1) > 1:
        given["iterations"] = 0
    tree = nested(given)
    # Validated as a whole on the preset, so a bad setting gets pydantic's message.
    method = tree.pop("method", {})
    geometry = PRESETS[preset].geometry.model_dump() | method.pop("geometry", {})
    tree["method"] = MethodConfig.model_validate(PRESETS[preset].model_dump() | method | {"geometry": geometry})
    chosen = _provider(provider, provider_given)
    pricing = tree.pop("pricing", None)
    if pricing and ("per_hour" in pricing or "per_request" in pricing):
        pricing = Pricing.model_validate(pricing | {"per_1k_images": given.get("price_per_1k") or 0.0})
        tree["price_per_1k"] = pricing.per_1k if pricing.complete else 0.0  # an hourly price is completed once measured
        tree["pricing"] = pricing
    elif pricing:
        raise ConfigError("--throughput prices an endpoint billed by the hour: pass --price-per-hour with it")
    else:
        tree["price_per_1k"] = price_of(chosen, given.get("price_per_1k"))
    if "prediction_cap" in tree:
        tree["prediction_cap"] = PredictionCap(**tree["prediction_cap"], views_asked=views_asked)
    return RunConfig.model_validate(
        tree | {"provider": chosen, "shape_by_api": ShapeByApi() if by_api else None,
                "name": given.get("name") or f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"}
    )


def _provider(name: str | None, options: dict[str, Any], over: ProviderConfig | None = None) -> ProviderConfig:
    """The provider named with its options given (a stored run's: with these on top; another
    provider: only these). ``False`` and ``None`` are options not given."""
    options = {k: v for k, v in options.items() if v is not None and v is not False}
    if options.get("key_file"):
        options["key_file"] = str(Path(options["key_file"]).expanduser().resolve())
    if over is not None and (name is None or name == over.name):
        return ProviderConfig(name=over.name, options=over.options | options)
    return ProviderConfig(name=name or DEFAULT_PROVIDER, options=options)


def price_of(provider: ProviderConfig, override: float | None = None) -> float:
    from barapi.adapters import model_id, providers
    from barapi.money import price_per_1k

    listed = providers()[provider.name].price_per_1k if provider.name in providers() else None
    return price_per_1k(provider.name, model_id(provider), listed=listed, override=override, price_file=Store.price_file())


def classifier_for(config: RunConfig) -> Classifier:
    """The run's provider as a classifier (the only place the library reaches the adapters)."""
    from barapi.adapters import build_classifier, client_for

    return build_classifier(config.provider, client_for(config.provider))


def _prepared(config: RunConfig, store: Store, classifier: Classifier | None) -> tuple[RunConfig, Classifier, Any, Estimate]:
    from barapi.data import run_split
    from barapi.run.planning import completed, estimate_run

    classifier = classifier or classifier_for(config)
    split = run_split(config)  # decoded once, for the estimate and the training
    config = completed(config, classifier, split, store)
    return config, classifier, split, estimate_run(config, classifier, store, split)


def estimate(config: RunConfig | None = None, /, *, store: Store | None = None, classifier: Classifier | None = None,
             **settings: Any) -> Estimate:
    """Queries and dollars a run would cost, before anything is spent (where the price or the
    label count is unknown until asked, the first 16 training images are sent once and cached).
    ``classifier``: a model of your own behind barapi.classifier.Classifier instead of a provider."""
    return _prepared(configure(config, **settings), store or Store(), classifier)[3]


def probe(config: RunConfig | None = None, /, *, store: Store | None = None, classifier: Classifier | None = None, **settings: Any) -> ProbeResult:
    """Before the money: a few of the run's candidate programs answered on its training images (at
    most 1,000 queries, no test image) and whether their answers add to the images alone beyond
    noise, with what the full run would cost. A run with the same settings afterwards finds those
    answers in the cache."""
    from barapi.run.probe import probe as probe_run

    store = store or Store()
    config, classifier, split, _ = _prepared(configure(config, **settings), store, classifier)
    return probe_run(config, classifier, store, split)


def train(
    config: RunConfig | None = None, /, *, on_progress: ProgressCallback | None = None, before_spending: SpendCheck | None = None,
    store: Store | None = None, classifier: Classifier | None = None, **settings: Any,
) -> Run:
    """Train a program within the budget; the run stays in the store (``barapi.runs()``), and an
    interrupted one carries on with ``barapi.resume(name)`` (given the same ``classifier``, if one
    of your own was used)."""
    store = store or Store()
    config = configure(config, **settings)
    if store.has_run(config.name):
        raise ConfigError(f"a run named {config.name!r} exists: continue it with `barapi resume {config.name}` or pick another name")
    config, classifier, split, figures = _prepared(config, store, classifier)
    if before_spending is not None:
        before_spending(config, figures)
    _execute(config, classifier, store, on_progress, split)
    return Run(config.name, store)


def resume(
    name: str, *, budget: float | None = None, max_queries: int | None = None, iterations: int | None = None,
    views: int | None = None, candidates: int | None = None, on_progress: ProgressCallback | None = None, store: Store | None = None,
    classifier: Classifier | None = None,
) -> Run:
    """Carry on a run exactly where it stopped (paid answers come from the cache); the budget,
    query cap, steps, views and candidates may be raised."""
    from barapi.run.checkpoint import load_config
    from barapi.run.planning import within_prediction_cap

    store = store or Store()
    config = load_config(store, name)
    updates: dict[str, Any] = {k: v for k, v in {"budget_usd": budget, "max_queries": max_queries}.items() if v is not None}
    method = {k: v for k, v in {"iterations": iterations, "views": views, "candidates": candidates}.items() if v is not None}
    if method:
        updates["method"] = MethodConfig.model_validate(config.method.model_dump() | method)  # validated: a view needs a candidate
    if views is not None and config.prediction_cap is not None:
        updates["prediction_cap"] = config.prediction_cap.model_copy(update={"views_asked": True})
    config = within_prediction_cap(config.model_copy(update=updates))
    _execute(config, classifier or classifier_for(config), store, on_progress)
    return Run(name, store)


def _execute(config: RunConfig, classifier: Classifier, store: Store, on_progress: ProgressCallback | None, split: Any = None) -> RunResult:
    """Train, and record why a run stopped early (interrupted, budget_exhausted, failed)."""
    from barapi.run.trainer import Trainer

    trainer = Trainer(config, classifier, store, on_progress=on_progress, split=split)
    try:
        return trainer.run()
    except KeyboardInterrupt:
        trainer.mark("interrupted")
        raise
    except BudgetExceeded:
        trainer.mark("budget_exhausted")
        raise
    except BaseException:
        trainer.mark("failed")
        raise


def load(name: str | Path, *, store: Store | None = None) -> Run | ExportedProgram:
    """A run on the store by name, or a folder written by ``Run.export`` / ``barapi export``."""
    from barapi.run.artifact import PROGRAM_FILE

    if isinstance(name, Path) or (Path(name) / PROGRAM_FILE).is_file():
        return ExportedProgram(Path(name), store=store)
    return Run(str(name), store)


def runs(*, store: Store | None = None) -> list[Run]:
    """Every run on the store, oldest first."""
    store = store or Store()
    return [Run(record.name, store) for record in store.list_runs()]


@dataclass(frozen=True)
class Predictions:
    classes: list[str]
    shares: np.ndarray  # (images, classes): each class's share of the mapped scores, rows summing to 1
    queries_paid: int
    queries_cached: int
    cost_usd: float

    @property
    def indices(self) -> np.ndarray:
        return np.argmax(self.shares, axis=1)

    @property
    def labels(self) -> list[str]:
        return [self.classes[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.shares)


def predict_program(learned: Any, images: Any, store: Store, ledger: str | None, budget: float | None, provider: str | None,
             options: dict[str, Any]) -> Predictions:
    """Images through a learned program; another provider (or options) than the run's may serve it."""
    from barapi.data import as_images

    chosen = _provider(provider, options, over=learned.config.provider)
    price = learned.config.price_per_1k if chosen == learned.config.provider else price_of(chosen)
    classifier = classifier_for(learned.config.model_copy(update={"provider": chosen}))
    targets = as_images(images, learned.geometry.embed_size)
    result = learned.predict(classifier, store, targets, budget_usd=budget, price_per_1k=price, ledger=ledger)
    return Predictions(learned.classes, result.shares, result.queries_paid, result.queries_cached, result.cost_usd)


class Run:
    """A run on the store: its figures as attributes, and what it learned to use."""

    def __init__(self, name: str, store: Store | None = None) -> None:
        self.store = store or Store()
        self.name = self.store.get_run(name).name  # refuses an unknown run, saying which exist

    def __repr__(self) -> str:
        return f"Run({self.name!r}, status={self.status!r})"

    @property
    def config(self) -> RunConfig:
        from barapi.run.checkpoint import load_config

        return load_config(self.store, self.name)

    @property
    def status(self) -> str:
        return self.store.get_run(self.name).status

    @property
    def result(self) -> RunResult | None:
        """What the run ended with; None until it completes (or stops on its budget)."""
        saved = json.loads(self.store.get_run(self.name).result or "null")
        return None if saved is None else RunResult(**{f.name: saved[f.name] for f in fields(RunResult) if f.name in saved})

    def summary(self) -> dict:
        """What `barapi runs show` prints: status, money, accuracy, the program's hash, the config."""
        from barapi.run.planning import run_summary

        return run_summary(self.store, self.store.get_run(self.name))

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(k for k in self.summary() if k != "config")})

    def __getattr__(self, name: str) -> Any:
        # The summary's figures as attributes: test_accuracy, cost_usd, queries_paid, program_sha256, …
        if name.startswith("_") or name in ("store", "name"):
            raise AttributeError(name)
        summary = self.summary()
        if name not in summary:
            raise AttributeError(f"a run has no {name!r}; it has {', '.join(summary)}")
        return summary[name]

    def metrics(self) -> list:
        """The run's history, one row per checkpoint: queries, dollars, loss, accuracies."""
        return self.store.metrics(self.name)

    @property
    def classes(self) -> list[str]:
        from barapi.data import dataset_classes

        return dataset_classes(self.config.data.dataset)

    def learned(self) -> Any:
        """The program and mapping its predictions use (barapi.run.artifact.LearnedProgram)."""
        from barapi.run.artifact import LearnedProgram

        return LearnedProgram.from_run(self.store, self.name, self.classes)

    def predict(self, images: Any, *, budget: float | None = None, provider: str | None = None, **provider_options: Any) -> Predictions:
        """Images (paths, PIL images, or a numpy batch) → class shares; every query goes through
        a budget, the cache and the run's ledger."""
        return predict_program(self.learned(), images, self.store, self.name, budget, provider, provider_options)

    def evaluate(self, dataset: str | None = None, *, budget: float | None = None, on_progress: ProgressCallback | None = None) -> dict:
        """Accuracy, per-class accuracy and confusion matrix on the run's test split (or on
        ``dataset``, with the same class names); queries go through the budget, cache and ledger."""
        from barapi.run.evaluation import evaluate_run

        config = self.config if budget is None else self.config.model_copy(update={"budget_usd": budget})
        return evaluate_run(self.store, config, classifier_for(config), dataset=dataset, on_progress=on_progress)

    def export(self, path: str | Path) -> list[Path]:
        """Write the program as a folder that predicts without this store (``barapi.load(path)``)."""
        from barapi.data import run_split

        split = run_split(self.config)
        learned = self.learned()
        # One example per class while there are classes, so the pictures show different targets.
        source = split.x_test if len(split.y_test) else split.x_train
        labels = split.y_test if len(split.y_test) else split.y_train
        firsts = [int(np.flatnonzero(labels == c)[0]) for c in range(split.n_classes) if np.any(labels == c)]
        return learned.save(Path(path), source[firsts])

    def resume(self, **changes: Any) -> Run:
        return resume(self.name, store=self.store, **changes)


class ExportedProgram:
    """A folder written by ``export``: predicts through the provider without the store that trained it."""

    def __init__(self, path: Path, store: Store | None = None) -> None:
        from barapi.run.artifact import LearnedProgram

        self.path = path
        self.store = store or Store()
        self.program = LearnedProgram.load(path)

    @property
    def classes(self) -> list[str]:
        return self.program.classes

    @property
    def program_sha256(self) -> str:
        return self.program.sha256

    @property
    def config(self) -> RunConfig:
        return self.program.config

    def predict(self, images: Any, *, budget: float | None = None, provider: str | None = None, **provider_options: Any) -> Predictions:
        return predict_program(self.program, images, self.store, None, budget, provider, provider_options)

