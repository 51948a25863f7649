"""What `barapi eval` reports: accuracy, per-class figures and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
