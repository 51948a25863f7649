"""From a provider's answer to target-class scores.

1. ``fill_missing``: providers often return only the top k labels. Every provider's answer is
   completed the same way: the labels it did not return share the remaining probability mass
   evenly, so each dense score vector sums to 1.
2. ``LabelMap``: m source labels per target class; a target class scores the mean of its source
   labels (the paper's h_j). Random or frequency-based assignment; the frequency mapping is built
   from the starting program's predicted probabilities (a flat canvas saturates the model, so
   P = 0 would give a degenerate mapping). The iterative mapping (ILM-VP, made black-box) re-runs
   the same greedy assignment during training on the answers training already paid for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np

from barapi.errors import ConfigError, ProviderResponseError

# Scores a hair above 1 or below 0 are float noise from the provider's own softmax.
SCORE_TOLERANCE = 1e-4


def imagenet_classes() -> list[str]:
    text = resources.files("barapi").joinpath("data/imagenet_classes.txt").read_text("utf-8")
    return text.splitlines()


def check_scores(scores: Mapping[str, float]) -> None:
    for label, value in scores.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ProviderResponseError(f"provider returned a non-numeric score {value!r} for {label!r}")
        if value < -SCORE_TOLERANCE or value > 1 + SCORE_TOLERANCE:
            raise ProviderResponseError(f"provider returned score {value} for {label!r}, outside [0, 1]")


def fill_missing(scores: Mapping[str, float], vocabulary: Sequence[str], index: Mapping[str, int] | None = None) -> np.ndarray:
    """A (possibly top-k) answer → a dense probability vector over ``vocabulary``.

    Returned labels keep their scores (clipped to [0, 1]); the mass they leave, 1 − Σ returned,
    is spread evenly over the vocabulary labels that were not returned. Labels outside the
    vocabulary are dropped and the vector renormalised (a distribution over the labels we
    track). If the returned scores sum past 1 (multi-label providers), nothing is left to
    spread and the vector is renormalised.
    """
    check_scores(scores)
    index = index or {label: i for i, label in enumerate(vocabulary)}
    dense = np.zeros(len(vocabulary))
    returned = np.zeros(len(vocabulary), dtype=bool)
    total = 0.0
    for label, value in scores.items():
        clipped = min(max(float(value), 0.0), 1.0)
        total += clipped
        position = index.get(label)
        if position is not None:
            dense[position] = clipped
            returned[position] = True
    missing = len(vocabulary) - int(returned.sum())
    if total < 1.0 and missing:
        dense[~returned] = (1.0 - total) / missing
    mass = dense.sum()
    return dense / mass if mass > 0 else np.full(len(vocabulary), 1.0 / len(vocabulary))


class LabelMap:
    """``assignment[j]`` holds the m vocabulary indices whose mean scores target class j."""

    def __init__(self, assignment: np.ndarray) -> None:
        self.assignment = np.asarray(assignment, dtype=int)

    @property
    def labels_per_class(self) -> int:
        return self.assignment.shape[1]

    def target_scores(self, dense: np.ndarray) -> np.ndarray:
        """(n, K) source probabilities → (n, K') target scores h(F(X))."""
        return dense[:, self.assignment].mean(axis=2)

    def describe(self, vocabulary: Sequence[str], classes: Sequence[str]) -> dict[str, list[str]]:
        return {cls: [vocabulary[i] for i in row] for cls, row in zip(classes, self.assignment)}


def check_mapping_size(vocabulary_size: int, n_classes: int, labels_per_class: int) -> None:
    if labels_per_class < 1:
        raise ConfigError("--labels-per-class must be at least 1")
    if n_classes * labels_per_class > vocabulary_size:
        raise ConfigError(
            f"{n_classes} classes × {labels_per_class} labels per class need {n_classes * labels_per_class} "
            f"distinct source labels but the model knows {vocabulary_size}: lower --labels-per-class"
        )


def random_mapping(vocabulary_size: int, n_classes: int, labels_per_class: int, rng: np.random.Generator) -> LabelMap:
    check_mapping_size(vocabulary_size, n_classes, labels_per_class)
    chosen = rng.choice(vocabulary_size, size=n_classes * labels_per_class, replace=False)
    return LabelMap(chosen.reshape(n_classes, labels_per_class))


def frequency_mapping(dense: np.ndarray, labels: np.ndarray, n_classes: int, labels_per_class: int) -> LabelMap:
    """Greedy, disjoint: repeatedly give the (class, source label) pair with the largest mean
    predicted probability to that class, until every class holds m labels.

    ``dense`` is (n, K): the provider's probabilities for the training images under the
    starting program. Using probabilities (not top-1 counts) keeps the mapping informative when
    one source label dominates every prediction.
    """
    check_mapping_size(dense.shape[1], n_classes, labels_per_class)
    sums, counts = class_sums(dense, labels, n_classes)
    return greedy_mapping(sums / np.maximum(counts, 1.0)[:, None], labels_per_class)


def class_sums(dense: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per target class: the sum of its images' source probabilities, and how many images."""
    sums = np.zeros((n_classes, dense.shape[1]))
    np.add.at(sums, labels, dense)
    return sums, np.bincount(labels, minlength=n_classes).astype(float)


def greedy_mapping(affinity: np.ndarray, labels_per_class: int) -> LabelMap:
    """``affinity[c, s]``: how strongly class c's images score source label s."""
    affinity = affinity.copy()
    n_classes = affinity.shape[0]
    assignment: list[list[int]] = [[] for _ in range(n_classes)]
    for _ in range(n_classes * labels_per_class):
        c, s = np.unravel_index(int(np.argmax(affinity)), affinity.shape)
        assignment[c].append(int(s))
        affinity[:, s] = -np.inf
        if len(assignment[c]) == labels_per_class:
            affinity[c, :] = -np.inf
    return LabelMap(np.asarray(assignment))
