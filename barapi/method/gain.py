"""What the paid views add to what the user's images reach alone, judged on images the choice of
views never saw: each outer fold of the training images is held out while the views are chosen
(forward selection, the readout's penalty) on the rest, as the run chose them on all; the held
fold is then read by that readout, and each image by the free view's on the same folds (the
pixels: barapi.method.free). The gain is the share of images the paid readout gets right beyond
the free one, with its standard error over the images (a paired difference). The run's own selection loss cannot say this: the folds that chose
the views also scored them, and on few images that flatters them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from barapi.method.mapping import Mapping
from barapi.method.free import cross_validated_correct, pixels
from barapi.method.portfolio import L2_GRID, CrossValidation, fit_dual, forward_selection, standardised
from barapi.method.readout import features, softmax
from barapi.method.selection import FOLDS, SIGNIFICANCE, stratified_folds

READOUT_STEPS = 400
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


def nested_gain(answers: list[np.ndarray], images: np.ndarray, labels: np.ndarray, n_classes: int, views: int,
                usd_per_1k: float) -> ApiGain | None:
    """``answers``: each candidate's dense answers on the training ``images``, in the order the run
    told them; ``views``: how many the run chooses. None where a class has fewer than
    MIN_PER_CLASS images."""
    if np.bincount(labels, minlength=n_classes).min() < MIN_PER_CLASS:
        return None
    outer = stratified_folds(labels, FOLDS)
    scaled = [standardised(features(dense)) for dense in answers]
    grams = [z @ z.T for z in scaled]
    paid_right = np.zeros(len(labels), bool)
    for k in range(FOLDS):
        held, kept = outer == k, outer != k
        inner = [g[np.ix_(kept, kept)] for g in grams]
        cv = CrossValidation(labels[kept], n_classes)
        chosen = forward_selection(inner, min(views, len(inner)), cv)
        gram = sum(grams[c] for c in chosen) + 1.0
        l2 = min(L2_GRID, key=lambda value: cv.log_loss(gram[np.ix_(kept, kept)] - 1.0, value))
        coefficients = fit_dual(gram[np.ix_(kept, kept)], labels[kept], n_classes, l2, READOUT_STEPS)
        paid_right[held] = np.argmax(softmax(gram[np.ix_(held, kept)] @ coefficients), axis=1) == labels[held]
    return paired(paid_right, cross_validated_correct(pixels(images), labels, n_classes), usd_per_1k)


def mapped_gain(mapping: Mapping, dense: np.ndarray, images: np.ndarray, labels: np.ndarray, n_classes: int, usd_per_1k: float,
                optimistic: bool) -> ApiGain | None:
    """A one-program run's: its mapping refitted without each fold on the training answers at the
    program it serves, against the pixels on the same folds (nothing is chosen among views here;
    a program stepped on these images is ``optimistic``: its W saw every fold). None where a
    class has fewer than MIN_PER_CLASS images."""
    if np.bincount(labels, minlength=n_classes).min() < MIN_PER_CLASS:
        return None
    fold = stratified_folds(labels, FOLDS)
    paid_right = np.zeros(len(labels), bool)
    for k in range(FOLDS):
        held = fold == k
        paid_right[held] = np.argmax(mapping.fitted(dense[~held], labels[~held]).target_scores(dense[held]), axis=1) == labels[held]
    return paired(paid_right, cross_validated_correct(pixels(images), labels, n_classes), usd_per_1k, optimistic)


def paired(paid_right: np.ndarray, free_right: np.ndarray, usd_per_1k: float, optimistic: bool = False) -> ApiGain:
    difference = paid_right.astype(float) - free_right.astype(float)
    return ApiGain(float(paid_right.mean()), float(free_right.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference))), usd_per_1k, optimistic)
