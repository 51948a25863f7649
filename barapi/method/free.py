"""Readouts over blocks of features, cross-validated on the training images.

A block is one source of features: a free view (the target's pixels, a local network's features:
barapi.method.views) or the paid views' answers. Each block is read by its own regularised
logistic regression, fitted in its dual (the n × n kernel of its standardised features, the bias
its own feature); the blocks' out-of-fold log-probabilities on the training images are then
pooled, one weight per block and one bias per class (barapi.method.readout.LogLinearPool;
docs/method.md says why so few parameters).

What the user's own images reach without the API (``cross_validated_correct`` of the free blocks)
is the first verdict before money is spent: an API worth paying for has to add to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from barapi.method.portfolio import fit_dual, standardised
from barapi.method.readout import LogLinearPool, floored_log, softmax
from barapi.method.selection import FOLDS, stratified_folds
from barapi.method.views import Pixels, free_features, free_views

# A free block's penalty (over features scaled so that the block weighs as one feature): fixed,
# not chosen on the folds that then score it (a choice made on them would flatter the figure the
# user decides by).
FREE_L2 = 0.01
# The pool's, on its block weights (pulled towards 1: each block as it is).
COMBINER_L2 = 0.01
STEPS = 400


@dataclass(frozen=True)
class Block:
    kernel: np.ndarray  # n × n over the training images, the bias included
    l2: float


def free_block(features: np.ndarray) -> Block:
    """A free view's block: its standardised features, scaled by 1/√d (the block weighs as one feature)."""
    z = standardised(features.astype(np.float64))
    return Block(z @ z.T / z.shape[1] + 1.0, FREE_L2)


def pixels(images: np.ndarray) -> np.ndarray:
    return Pixels().features(images)


@dataclass(frozen=True)
class FreeReading:
    """The configured free views (--free-views) on the training images, as a run, its estimate
    and its gain read them."""

    specs: tuple[str, ...]
    images: np.ndarray

    @cached_property
    def features(self) -> list[np.ndarray]:
        return free_features(self.specs, self.images)

    @cached_property
    def blocks(self) -> list[Block]:
        return [free_block(x) for x in self.features]

    @cached_property
    def yardstick(self) -> list[Block]:
        """What the paid views are judged against: the free views' blocks (pooled); with none,
        the pixels' (alone, as the API's views are then read)."""
        return self.blocks or [free_block(pixels(self.images))]


def read_free(spec: str, images: np.ndarray) -> FreeReading:
    return FreeReading(tuple(view.spec for view in free_views(spec)), images)


def log_proba(block: Block, labels: np.ndarray, n_classes: int, fit: np.ndarray, predict: np.ndarray) -> np.ndarray:
    """The block's readout fitted on the ``fit`` images, its (floored) log-probabilities on the ``predict`` ones."""
    coefficients = fit_dual(block.kernel[np.ix_(fit, fit)], labels[fit], n_classes, block.l2, STEPS)
    return floored_log(softmax(block.kernel[np.ix_(predict, fit)] @ coefficients))


def folds_of(labels: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Each training image's fold (stratified, deterministic); None where a class has fewer
    images than two folds need."""
    folds = min(FOLDS, int(np.bincount(labels, minlength=n_classes).min()))
    return stratified_folds(labels, FOLDS) % folds if folds >= 2 else None


def out_of_fold(blocks: Sequence[Block], labels: np.ndarray, n_classes: int, fold: np.ndarray) -> np.ndarray:
    """(n, B, C): each image's log-probabilities by every block, each fitted without the image's fold."""
    logs = np.zeros((len(labels), len(blocks), n_classes))
    for k in np.unique(fold) if blocks else ():
        held = fold == k
        logs[held] = np.stack([log_proba(b, labels, n_classes, ~held, held) for b in blocks], axis=1)
    return logs


def pooled_correct(logs: np.ndarray, labels: np.ndarray, n_classes: int, fold: np.ndarray, pooled: bool) -> np.ndarray:
    """Whether each image is right by its out-of-fold log-probabilities (n, B, C): pooled by a
    pool fitted on the other folds' (``pooled``; even one block, so that a pooled readout and
    its yardstick differ in their blocks only, not in the pool's recalibration), else the one
    block's as they are."""
    if not pooled:
        return np.argmax(logs[:, 0], axis=1) == labels
    right = np.zeros(len(labels), bool)
    for k in np.unique(fold):
        held = fold == k
        pool = LogLinearPool.fit(logs[~held], labels[~held], n_classes, COMBINER_L2)
        right[held] = np.argmax(pool.target_scores(logs[held]), axis=1) == labels[held]
    return right


def cross_validated_correct(blocks: Sequence[Block], labels: np.ndarray, n_classes: int, pooled: bool = True) -> np.ndarray | None:
    """Whether each training image is right by the blocks' readout fitted on the other folds (the
    pool on the other folds' out-of-fold answers). None where a class has too few images."""
    fold = folds_of(labels, n_classes)
    return None if fold is None else pooled_correct(out_of_fold(blocks, labels, n_classes, fold), labels, n_classes, fold, pooled)


def cross_validated_accuracy(blocks: Sequence[Block], labels: np.ndarray, n_classes: int, pooled: bool = True) -> float | None:
    """The share of training images right by a readout fitted on the other folds (None: too few images)."""
    right = cross_validated_correct(blocks, labels, n_classes, pooled)
    return None if right is None else int(right.sum()) / len(labels)
