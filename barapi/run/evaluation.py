"""What `barapi eval` reports: accuracy, per-class figures and the confusion matrix."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from barapi.errors import ConfigError
from barapi.run.strategies import closing_queries
from barapi.run.trainer import Trainer

if TYPE_CHECKING:
    from barapi.classifier import Classifier
    from barapi.config import RunConfig
    from barapi.run.records import Progress
    from barapi.store import Store


def evaluate_run(
    store: Store, config: RunConfig, classifier: Classifier, *, dataset: str | None = None, on_progress: Callable[[Progress], None] | None = None,
) -> dict:
    """A run's program on its test split, or on another dataset with the same classes: the
    report, and what its queries cost (booked to the run like any other)."""
    from barapi.data import load_dataset

    trainer = Trainer(config, classifier, store, on_progress, record_status=False)
    paid_before, cost_before = trainer.budget.spent_queries, trainer.budget.spent_usd
    images, labels = trainer.split.x_test, trainer.split.y_test
    if dataset is not None:
        images, labels, classes = load_dataset(dataset, embed_size=config.method.geometry.embed_size)
        if classes != trainer.split.classes:
            raise ConfigError(f"{dataset} has classes {classes}, but run {config.name!r} was trained on {trainer.split.classes}")
    truth, predicted = evaluate_images(trainer, images, labels)
    return report(truth, predicted, trainer.split.classes) | {
        "queries_paid": trainer.budget.spent_queries - paid_before,
        "cost_usd": round(trainer.budget.spent_usd - cost_before, 6),
    }


def evaluate_images(trainer: Trainer, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, predicted labels) of a run's current program on its test split, or on the
    images given; every query goes through the budget, cache and ledger, and each answer is
    reported to the run's ``on_progress`` (phase "evaluating": images answered of the set)."""
    state = trainer.restore()
    if state is None:
        raise ConfigError(f"run {trainer.config.name!r} has no checkpoint yet: train it first")
    images = trainer.split.x_test if images is None else images
    truth = trainer.split.y_test if labels is None else labels
    answered = [0]
    lock = threading.Lock()

    def tick(count: int) -> None:  # adapters answer from several threads
        with lock:
            answered[0] += count
            trainer.emit("evaluating", None, None, counted=(min(answered[0], len(truth)), len(truth)))

    trainer.engine.meter.on_answered = tick
    method = trainer.config.method
    closing = closing_queries(method, len(trainer.split.y_train)) if trainer.lags(state) else 0
    try:
        with trainer.engine.holding(method.views * len(images) + closing):
            scores = trainer.predict_scores(trainer.serving(state, keep=len(images)), images, state.vocabulary)
    finally:
        trainer.engine.meter.on_answered = None
    return truth, np.argmax(scores, axis=1)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``matrix[i, j]``: images of class i predicted as class j."""
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def report(truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> dict:
    matrix = confusion_matrix(truth, predicted, len(classes))
    support = matrix.sum(axis=1)
    per_class = {
        name: {"accuracy": float(matrix[i, i] / support[i]) if support[i] else None, "support": int(support[i])}
        for i, name in enumerate(classes)
    }
    result = {
        "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "per_class": per_class,
        "confusion": matrix.tolist(),
        "classes": list(classes),
    }
    if len(classes) == 2:
        # The paper's Table 1 convention: class 1 is the positive class.
        tp, fn, fp, tn = matrix[1, 1], matrix[1, 0], matrix[0, 1], matrix[0, 0]
        result["sensitivity"] = float(tp / (tp + fn)) if tp + fn else None
        result["specificity"] = float(tn / (tn + fp)) if tn + fp else None
    return result
