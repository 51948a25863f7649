"""Training losses on target scores h (n, K'), which need not sum to 1 (they are means of
source probabilities)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# log(0) guard: a mapped source label can legitimately get probability 0 from a top-k answer.
PROBABILITY_FLOOR = 1e-12


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """ω_j = 1/n_j as in the paper, rescaled to average 1 so the loss scale (and hence the
    step size) does not depend on the dataset size."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    inverse = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    return inverse / inverse[counts > 0].mean()


def focal_loss(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray, gamma: float = 2.0) -> float:
    """Mean over samples of −ω_y (1 − h_y)^γ log h_y (paper eq. 2, averaged over the batch)."""
    h = np.clip(scores[np.arange(len(labels)), labels], PROBABILITY_FLOOR, 1.0)
    return float(np.mean(-weights[labels] * (1.0 - h) ** gamma * np.log(h)))


def cross_entropy(scores: np.ndarray, labels: np.ndarray) -> float:
    h = np.clip(scores[np.arange(len(labels)), labels], PROBABILITY_FLOOR, 1.0)
    return float(np.mean(-np.log(h)))


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == labels)) if len(labels) else float("nan")


def weighted_cross_entropy(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray, gamma: float) -> float:
    """Cross-entropy as a loss of the registry's shape (it weighs every image alike)."""
    return cross_entropy(scores, labels)


# Losses by name, each (scores, labels, class weights, focal γ) → mean loss.
LOSSES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, float], float]] = {"focal": focal_loss, "ce": weighted_cross_entropy}
