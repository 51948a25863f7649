"""What a run will cost before it starts, and what it did after: the figures `estimate`,
`train` and `runs` print."""

from __future__ import annotations

import json
import time

from barapi.run.checkpoint import config_of, load_state
from barapi.classifier import Classifier, canvas_encoding
from barapi.config import MethodConfig, RunConfig, ShapeByApi
from barapi.data import Split, run_split
from barapi.method.mapping import MAPPINGS
from barapi.errors import ConfigError
from barapi.money import Budget, Estimate, cost_usd
from barapi.run.strategies import closing_passes, closing_queries, new_mapping, optimizer_for
from barapi.method.portfolio import CANDIDATE_QUERIES, DEFAULT_CANDIDATES, DEFAULT_VIEWS, FEW_LABELS, MANY_LABEL_VIEWS
from barapi.method.free import cross_validated_accuracy, read_free
from barapi.method.signal import StepSignal, signal_figures
from barapi.method.program import Program, starting_parameters
from barapi.run.queries import LedgerMeter
from barapi.store import RunRecord, Store, response_key


def queries_per_step(method: MethodConfig) -> int:
    """A training step's queries: its batch through every point the optimiser asks for."""
    return method.batch_size * optimizer_for(method).queries_per_sample


def iterations_within(method: MethodConfig, n_train: int, budget: int) -> int:
    """The steps a budget of training queries pays for besides the label mapping's pass and the
    closing pass (what benchmarks compare at equal training cost)."""
    fixed = n_train + MAPPINGS[method.mapping].closing_queries(n_train)
    return max((budget - fixed) // queries_per_step(method), 0)


FIRST_BATCH_IMAGES = 16


def ending_queries(method: MethodConfig, n_train: int, n_test: int, labels_published: bool, started: bool) -> tuple[int, int, int]:
    """What a run must spend to end measured: the label mapping (unless it has started), the
    closing pass and the test set through every view."""
    start = 0 if started else MAPPINGS[method.mapping].start_queries(n_train, labels_published)
    return start, closing_queries(method, n_train), method.views * n_test


def completed(config: RunConfig, classifier: Classifier, split: Split, store: Store) -> RunConfig:
    """The run's configuration with what the provider tells before the run: the price per image
    (an hourly price's throughput measured), the shape of a run that left it to the API (by its
    label count: ``shaped``) and the views within --max-usd-per-1k-predictions at that price.
    Where the price or the label count is not known without asking, the first batch of the run's
    training images under its starting program (what the label mapping sends first) is sent,
    booked on the run at the complete price and cached, so the run does not pay for it again."""
    pricing, labels = config.pricing, classifier.labels()
    unshaped = config.shape_by_api is not None and config.shape_by_api.labels is None
    if (pricing is not None and not pricing.complete) or (unshaped and not labels):
        images = Program(config.method.geometry, canvas_encoding(classifier)).encode_batch(starting_parameters(config.method, config.seed), split.x_train[:FIRST_BATCH_IMAGES])
        started = time.monotonic()
        answers = classifier.predict(images)
        if pricing is not None and not pricing.complete:
            pricing = pricing.measured(len(images) / max(time.monotonic() - started, 1e-6))
            config = config.model_copy(update={"pricing": pricing, "price_per_1k": pricing.per_1k})
        meter = LedgerMeter(store, Budget(max_usd=config.budget_usd, max_queries=config.max_queries, per_1k=config.price_per_1k), config.name, classifier, config.pool)
        meter.on_success(meter.before_send(images), answers)
        labels = labels or sorted({label for answer in answers for label in answer})
    if unshaped:
        config = shaped(config, len(labels), len(split.y_train))
    return within_prediction_cap(config)


def shaped(config: RunConfig, labels: int, n_train: int) -> RunConfig:
    """The measured default for this kind of API: through few labels, 8 views chosen of as many
    candidates as CANDIDATE_QUERIES pay for; through many, the start and one more program, both
    served (barapi.method.portfolio's constants say where each was measured)."""
    method = config.method
    if labels <= FEW_LABELS:
        views, candidates = DEFAULT_VIEWS, min(DEFAULT_CANDIDATES, max(2 * DEFAULT_VIEWS, CANDIDATE_QUERIES // n_train))
    else:
        views = candidates = MANY_LABEL_VIEWS
    method = MethodConfig.model_validate(method.model_dump() | {"views": views, "candidates": candidates, "iterations": 0})
    return config.model_copy(update={"method": method, "shape_by_api": ShapeByApi(labels=labels)})


def within_prediction_cap(config: RunConfig) -> RunConfig:
    """Each predicted image costs V queries at the run's price: the cap lowers the default V, and
    refuses a V asked for that it cannot pay."""
    cap, method, price = config.prediction_cap, config.method, config.price_per_1k
    if cap is None:
        return config
    fits = int((cap.usd_per_1k + 1e-9) // price) if price else method.views
    if method.views <= fits:
        return config
    if not cap.views_asked and fits >= 1:
        return config.model_copy(update={"method": method.model_copy(update={"views": fits})})
    raise ConfigError(
        f"{method.views} views cost ${method.views * price:.2f} per 1,000 predictions at ${price:.2f}/1k, above "
        f"--max-usd-per-1k-predictions {cap.usd_per_1k:g}: " + (f"pass --views {fits} or fewer" if fits else "not even one view fits; raise the cap")
    )


def estimate_run(config: RunConfig, classifier: Classifier, store: Store, split: Split | None = None) -> Estimate:
    """Queries for label mapping, training (iterations × batch × queries per sample), the
    linear readout's passes over the training set at the final (and any interim-evaluated) W,
    and evaluation. ``cached`` counts the images whose bytes are known before training (the label
    mapping's and the first step's unperturbed ones) and are already in the cache."""
    method = config.method
    split = split or run_split(config)
    n_train, n_test = len(split.y_train), len(split.y_test)
    mapping = MAPPINGS[method.mapping]
    vocabulary = classifier.labels()
    # Refused here, before any query, when the mapping cannot fit a published vocabulary.
    notice = new_mapping(method, split.n_classes, len(vocabulary))[1] if vocabulary else None
    start_queries = mapping.start_queries(n_train, bool(vocabulary))
    known = Program(method.geometry, canvas_encoding(classifier)).encode_batch(starting_parameters(method, config.seed), split.x_train) if start_queries else []
    keys = list({response_key(classifier.name, classifier.cache_scope, image) for image in known})
    return Estimate(
        label_mapping=start_queries,
        training=method.iterations * queries_per_step(method),
        candidates=(method.candidates - 1) * n_train,
        readout=closing_queries(method, n_train) * closing_passes(method),
        evaluation=method.views * n_test * (1 + method.interim_evaluations),
        views=method.views,
        candidate_programs=method.candidates,
        cached=len(store.cached(keys)),
        price_per_1k=config.price_per_1k,
        pricing=config.pricing,
        vocabulary=len(vocabulary) if vocabulary else None,
        notice="; ".join(filter(None, (notice, *split.notes))) or None,
        fitted_to_labels=config.shape_by_api.labels if config.shape_by_api else None,
        free_baseline=free_baseline(split, method.free_views),
    )


def free_baseline(split: Split, spec: str, gain: dict | None = None) -> dict:
    """What the free views (--free-views; with none, the pixels) reach on the training images,
    cross-validated (barapi.method.free): no query. A run's ``gain`` (barapi.method.gain) judged
    its paid views against the same folds: its free figure is this one."""
    free = read_free(spec, split.x_train)
    accuracy = gain["free_cv_accuracy"] if gain else cross_validated_accuracy(free.yardstick, split.y_train, split.n_classes, pooled=bool(free.specs))
    return {"views": list(free.specs) or ["pixels"], "cv_accuracy": None if accuracy is None else round(accuracy, 4)}


def run_summary(store: Store, record: RunRecord) -> dict:
    """What `runs show` reports, from the ledger (money) and the latest checkpoint (progress)."""
    paid, cost = store.spent(record.name)
    cached = store.ledger_counts(record.name).get("hit", 0)
    config = config_of(record)
    result = json.loads(record.result or "{}")
    metrics = store.metrics(record.name)
    latest = metrics[-1] if metrics else None
    state = load_state(store, record.name)
    views = len(state.views) if state else config.method.views
    signal = StepSignal.restored(state.arrays, state.w.shape) if state else None
    return {
        "name": record.name,
        "status": record.status,
        "provider": config.provider.name,
        "dataset": config.data.dataset,
        "iterations": state.iteration if state else 0,
        "queries_paid": paid,
        "queries_cached": cached,
        "cost_usd": round(cost, 6),
        "budget_usd": config.budget_usd,
        "train_accuracy": result.get("train_accuracy", latest.train_accuracy if latest else None),
        "test_accuracy": result.get("test_accuracy", next((m.test_accuracy for m in reversed(metrics) if m.test_accuracy is not None), None)),
        "program_sha256": state.sha256 if state else None,
        "views": views,
        "queries_per_prediction": views,
        "usd_per_1k_predictions": round(cost_usd(1000 * views, config.price_per_1k), 6),
        "step_signal": signal.ratio if signal else None,
        **signal_figures(signal.reading(config.method.q) if signal else None),
        "selection": result.get("selection"),
        "config": json.loads(record.config),
    }
