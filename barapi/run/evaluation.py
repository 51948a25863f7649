"""What `barapi eval` reports: accuracy, per-class figures and the confusion matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from barapi.errors import ConfigError

if TYPE_CHECKING:
    from barapi.classifier import Classifier
    from barapi.config import RunConfig
    from barapi.store import Store
    from barapi.run.records import Progress


def evaluate_run(
    store: Store, config: RunConfig, classifier: Classifier, *, dataset: str | None = None, on_progress: Callable[[Progress], None] | None = None,
) -> dict:
    """A run's program on its test split, or on another dataset with the same classes: the
    report, and what its queries cost (booked to the run like any other)."""
    from barapi.data import load_dataset
    from barapi.run.trainer import Trainer

    trainer = Trainer(config, classifier, store, on_progress, record_status=False)
    paid_before, cost_before = trainer.budget.spent_queries, trainer.budget.spent_usd
    images, labels = trainer.split.x_test, trainer.split.y_test
    if dataset is not None:
        images, labels, classes = load_dataset(dataset, embed_size=config.method.geometry.embed_size)
        if classes != trainer.split.classes:
            raise ConfigError(f"{dataset} has classes {classes}, but run {config.name!r} was trained on {trainer.split.classes}")
    truth, predicted = trainer.evaluate(images, labels)
    return report(truth, predicted, trainer.split.classes) | {
        "queries_paid": trainer.budget.spent_queries - paid_before,
        "cost_usd": round(trainer.budget.spent_usd - cost_before, 6),
    }


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
