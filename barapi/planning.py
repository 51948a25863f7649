"""What a run will cost before it starts, and what it did after: the figures `estimate`,
`train` and `runs` print."""

from __future__ import annotations

import io
import json

import numpy as np

from barapi.classifier import Classifier
from barapi.config import RunConfig
from barapi.data import Split
from barapi.money import Budget, Estimate
from barapi.optim import ESTIMATORS
from barapi.program import Program, initial_parameters, program_sha256
from barapi.queries import LedgerMeter
from barapi.store import RunRecord, Store
from barapi.trainer import INIT_STREAM, run_split


def estimate_run(config: RunConfig, classifier: Classifier, store: Store, split: Split | None = None) -> Estimate:
    """Queries for label mapping, training (iterations × batch × queries per sample), the
    linear readout's passes over the training set at the final (and any interim-evaluated) W,
    and evaluation. ``cached`` counts the images whose bytes are known before training (the label
    mapping's and the first step's unperturbed ones) and are already in the cache."""
    method = config.method
    split = split or run_split(config)
    n_train, n_test = len(split.y_train), len(split.y_test)
    # Every mapping but the random one is built from the starting program's answers.
    needs_mapping_queries = method.mapping != "random" or not classifier.labels()
    per_sample = ESTIMATORS[method.estimator](q=method.q, beta=method.beta).queries_per_sample
    interim = (method.iterations - 1) // method.eval_every if method.eval_every else 0
    w0 = initial_parameters(method.geometry, method.init_scale, np.random.default_rng([config.seed, INIT_STREAM]))
    known = Program(method.geometry).encode_batch(w0, split.x_train) if needs_mapping_queries else []
    meter = LedgerMeter(store, Budget(max_usd=None, max_queries=None, per_1k=config.price_per_1k), config.name, classifier)
    keys = list({meter.key(image) for image in known})
    return Estimate(
        label_mapping=n_train if needs_mapping_queries else 0,
        training=method.iterations * method.batch_size * per_sample,
        readout=n_train * (1 + interim) if method.mapping == "linear" else 0,
        evaluation=n_test * (1 + interim),
        cached=len(store.cached(keys)),
        price_per_1k=config.price_per_1k,
    )


def run_summary(store: Store, record: RunRecord) -> dict:
    """What `runs show` reports, from the ledger (money) and the latest checkpoint (progress)."""
    paid, cost = store.spent(record.name)
    cached = store.ledger_counts(record.name).get("hit", 0)
    config = RunConfig.model_validate_json(record.config)
    result = json.loads(record.result or "{}")
    metrics = store.metrics(record.name)
    latest = metrics[-1] if metrics else None
    checkpoint = store.load_checkpoint(record.name)
    sha = None
    if checkpoint is not None:
        with np.load(io.BytesIO(checkpoint.state), allow_pickle=False) as archive:
            sha = program_sha256(archive["w"])
    return {
        "name": record.name,
        "status": record.status,
        "provider": config.provider.name,
        "dataset": config.data.dataset,
        "iterations": checkpoint.iteration if checkpoint else 0,
        "queries_paid": paid,
        "queries_cached": cached,
        "cost_usd": round(cost, 6),
        "budget_usd": config.budget_usd,
        "train_accuracy": result.get("train_accuracy", latest.train_accuracy if latest else None),
        "test_accuracy": result.get("test_accuracy", next((m.test_accuracy for m in reversed(metrics) if m.test_accuracy is not None), None)),
        "program_sha256": sha,
        "config": json.loads(record.config),
    }
