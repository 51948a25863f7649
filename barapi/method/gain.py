"""What the paid views add to what the user's images reach alone, judged on images the choice of
views never saw: each fold of the training images is held out while the views are chosen (forward
selection, the readout's penalty) on the rest, as the run chose them on all, and read by that
readout; a pool fitted on the other folds reads those answers beside the free views' (barapi.method.free),
and another the free views' alone. The gain is the share of images the first gets right beyond
the second, with its standard error over the images (a paired difference); a run serves the paid
views only where it is beyond its noise. The run's own selection loss cannot say this: the folds
that chose the views also scored them, and on few images that flatters them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from barapi.method.free import Block, cross_validated_correct, log_proba, out_of_fold, pooled_correct
from barapi.method.mapping import Mapping
from barapi.method.portfolio import CrossValidation, chosen_l2, forward_selection, paid_gram
from barapi.method.selection import FOLDS, SIGNIFICANCE, stratified_folds

# Below this many training images of some class the gain's standard error is too wide to decide
# anything by (about 0.1 at 10 a class of two classes), and none is reported.
MIN_PER_CLASS = 10


@dataclass(frozen=True)
class ApiGain:
    paid_cv_accuracy: float  # the chosen views' readout, nested cross-validation
    free_cv_accuracy: float  # the pixels' readout on the same folds
    se: float  # of the paired difference, over the training images
    usd_per_1k_predictions: float  # what the views cost each 1,000 predicted images
    optimistic: bool = False  # a program stepped on these images: every fold shaped it

    @property
    def cv_accuracy(self) -> float:
        return self.paid_cv_accuracy - self.free_cv_accuracy

    @property
    def beyond_noise(self) -> bool:
        """One-sided 5 %: the API's answers add to the user's images alone."""
        return self.cv_accuracy > SIGNIFICANCE * self.se

    def as_json(self) -> dict:
        return {"cv_accuracy": round(self.cv_accuracy, 4), "se": round(self.se, 4), "usd_per_1k_predictions": round(self.usd_per_1k_predictions, 6),
                "paid_cv_accuracy": round(self.paid_cv_accuracy, 4), "free_cv_accuracy": round(self.free_cv_accuracy, 4),
                "beyond_noise": self.beyond_noise, "optimistic": self.optimistic}

    def state(self) -> np.ndarray:
        return np.asarray([self.paid_cv_accuracy, self.free_cv_accuracy, self.se, self.usd_per_1k_predictions])

    @classmethod
    def restored(cls, values: np.ndarray | None) -> ApiGain | None:
        return None if values is None else cls(*(float(v) for v in values))


class Judged(NamedTuple):
    gain: ApiGain | None
    evidence: np.ndarray | None  # (n, 1 + F, C) out-of-fold log-probabilities: the paid views' (chosen without the fold), the free views'


def nested_gain(answers: list[np.ndarray], free: list[Block], labels: np.ndarray, n_classes: int, views: int, usd_per_1k: float,
                yardstick: list[Block]) -> Judged:
    """``answers``: each candidate's dense answers on the training images, in the order the run
    told them; ``views``: how many the run chooses; ``free``: the free views' blocks read with the
    paid ones (barapi.method.free), ``yardstick``: what the paid views are judged against (the
    free views, pooled; with none, the pixels, and the paid views read alone). Each image's paid
    log-probabilities come from views chosen, and a readout fitted, without its fold; the pool
    that reads them beside the free views' is fitted on the other folds. The out-of-fold
    log-probabilities are the evidence a served pool is fitted on. No gain where a class has
    fewer than MIN_PER_CLASS images."""
    if np.bincount(labels, minlength=n_classes).min() < MIN_PER_CLASS:
        return Judged(None, None)
    fold = stratified_folds(labels, FOLDS)
    grams = view_grams(answers)

    def chosen_as_the_run_chooses(kept: np.ndarray, cv: CrossValidation) -> list[int]:
        return forward_selection([g[np.ix_(kept, kept)] for g in grams], min(views, len(grams)), cv)

    paid = paid_out_of_fold(grams, labels, n_classes, fold, chosen_as_the_run_chooses)
    pooled = bool(free)
    evidence = np.concatenate([paid[:, None], out_of_fold(free, labels, n_classes, fold)], axis=1)
    against = evidence[:, 1:] if pooled else out_of_fold(yardstick, labels, n_classes, fold)
    gain = paired(pooled_correct(evidence, labels, n_classes, fold, pooled), pooled_correct(against, labels, n_classes, fold, pooled), usd_per_1k)
    return Judged(gain, evidence)


def view_grams(answers: list[np.ndarray]) -> list[np.ndarray]:
    """Each view's Gram matrix of its standardised log-answers (barapi.method.portfolio.paid_gram of one view)."""
    return [paid_gram([dense]) for dense in answers]


def paid_out_of_fold(grams: list[np.ndarray], labels: np.ndarray, n_classes: int, fold: np.ndarray,
                     choose: Callable[[np.ndarray, CrossValidation], Sequence[int]]) -> np.ndarray:
    """(n, C): each image's log-probabilities by the views ``choose(kept, cv)`` picks without its
    fold, read by a readout fitted without it (its penalty cross-validated on the other folds)."""
    paid = np.zeros((len(labels), n_classes))
    for k in np.unique(fold):
        held, kept = fold == k, fold != k
        cv = CrossValidation(labels[kept], n_classes)
        gram = sum(grams[c] for c in choose(kept, cv))
        paid[held] = log_proba(Block(gram + 1.0, chosen_l2(gram[np.ix_(kept, kept)], cv)), labels, n_classes, kept, held)
    return paid


def mapped_gain(mapping: Mapping, dense: np.ndarray, yardstick: list[Block], pooled: bool, labels: np.ndarray, n_classes: int,
                usd_per_1k: float, optimistic: bool) -> ApiGain | None:
    """A one-program run's: its mapping refitted without each fold on the training answers at the
    program it serves, against the free views on the same folds (nothing is chosen among views
    here; a program stepped on these images is ``optimistic``: its W saw every fold). None where a
    class has fewer than MIN_PER_CLASS images."""
    if np.bincount(labels, minlength=n_classes).min() < MIN_PER_CLASS:
        return None
    fold = stratified_folds(labels, FOLDS)
    paid_right = np.zeros(len(labels), bool)
    for k in range(FOLDS):
        held = fold == k
        paid_right[held] = np.argmax(mapping.fitted(dense[~held], labels[~held]).target_scores(dense[held]), axis=1) == labels[held]
    return paired(paid_right, cross_validated_correct(yardstick, labels, n_classes, pooled), usd_per_1k, optimistic)


def paired(paid_right: np.ndarray, free_right: np.ndarray, usd_per_1k: float, optimistic: bool = False) -> ApiGain:
    difference = paid_right.astype(float) - free_right.astype(float)
    return ApiGain(float(paid_right.mean()), float(free_right.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference))), usd_per_1k, optimistic)
