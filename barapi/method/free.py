"""What the user's own images reach without the API: a view that costs nothing — the target's
pixels, grey at 28×28 — read by the same kind of readout barapi fits to the API's answers,
cross-validated on the training images (no test image, no query). A first verdict before money
is spent: an API worth paying for has to add to this."""

from __future__ import annotations

import numpy as np

from barapi.method.portfolio import fit_dual, standardised
from barapi.method.readout import softmax
from barapi.method.selection import FOLDS, stratified_folds

PIXELS_SIDE = 28
# The readout's penalty for the pixels: fixed, not chosen on the folds that then score it (a
# choice made on them would flatter the figure the user decides by).
PIXELS_L2 = 0.01
STEPS = 400


def pixels(images: np.ndarray) -> np.ndarray:
    """(n, s, s, 3) images in [-1, 1] → (n, 28·28) grey, averaged over blocks (or repeated)."""
    grey = images.mean(axis=3)
    side = grey.shape[1]
    index = (np.arange(PIXELS_SIDE) * side // PIXELS_SIDE)
    return grey[:, index][:, :, index].reshape(len(images), -1)


def pixels_kernel(features: np.ndarray) -> np.ndarray:
    """The free readout's kernel over the images' standardised pixels (the bias its own feature)."""
    z = standardised(features.astype(np.float64))
    return z @ z.T / z.shape[1] + 1.0


def held_out_correct(kernel: np.ndarray, labels: np.ndarray, n_classes: int, held: np.ndarray, l2: float = PIXELS_L2) -> np.ndarray:
    """Whether each ``held`` image is right, by a readout fitted on the others."""
    kept = ~held
    coefficients = fit_dual(kernel[np.ix_(kept, kept)], labels[kept], n_classes, l2, STEPS)
    return np.argmax(softmax(kernel[np.ix_(held, kept)] @ coefficients), axis=1) == labels[held]


def cross_validated_correct(features: np.ndarray, labels: np.ndarray, n_classes: int, l2: float = PIXELS_L2) -> np.ndarray | None:
    """Whether each training image is right by a readout fitted on the other folds. None where a
    class has fewer images than two folds need."""
    folds = min(FOLDS, int(np.bincount(labels, minlength=n_classes).min()))
    if folds < 2:
        return None
    fold = stratified_folds(labels, FOLDS) % folds
    kernel = pixels_kernel(features)
    right = np.zeros(len(labels), bool)
    for k in range(folds):
        right[fold == k] = held_out_correct(kernel, labels, n_classes, fold == k, l2)
    return right


def cross_validated_accuracy(features: np.ndarray, labels: np.ndarray, n_classes: int, l2: float = PIXELS_L2) -> float | None:
    """The share of training images right by a readout fitted on the other folds (None: too few images)."""
    right = cross_validated_correct(features, labels, n_classes, l2)
    return None if right is None else int(right.sum()) / len(labels)
