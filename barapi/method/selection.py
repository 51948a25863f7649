"""Which program a run ends with: the trained one, or its start when the answers say training lost.

A zeroth-order walk can end below where it began (bench/results/fewlabel.md: coarse-2 × Pullover
vs Coat falls from 67.7 % to 58.5 %). At the closing pass the run holds every training image's
answer at the final W, and, in the cache, at W0 (the label mapping read them): cross-validating
the mapping on each says, at no extra query, which program generalises better. A few training
images measure that coarsely, so the start is kept only when it is significantly better: when the
images only it gets right outnumber those only the trained program gets right by more than
SIGNIFICANCE standard deviations of a fair coin (a one-sided sign test). Even so it judges
coarsely (bench/results/fewlabel.md: on 2,000 held-out images it chose the worse program in 3 of
the 5 firings checked), so runs ask for it (MethodConfig.keep_better_start, off by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from barapi.method.mapping import Mapping

FOLDS = 5
SIGNIFICANCE = 1.645  # one-sided 5 %


def stratified_folds(labels: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Each image's fold: each class's images dealt in turn, deterministic so that a resumed run
    decides alike."""
    fold = np.empty(len(labels), dtype=int)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        fold[members] = np.arange(len(members)) % folds
    return fold


def cross_validated_correct(mapping: Mapping, dense: np.ndarray, labels: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Whether each image is classified right by the mapping refitted without it: stratified
    folds (each class's images dealt in turn), deterministic so that a resumed run decides alike."""
    fold = stratified_folds(labels, folds)
    correct = np.zeros(len(labels), dtype=bool)
    for k in range(folds):
        held = fold == k
        if held.any() and (~held).any():
            scores = mapping.fitted(dense[~held], labels[~held]).target_scores(dense[held])
            correct[held] = np.argmax(scores, axis=1) == labels[held]
    return correct


@dataclass(frozen=True)
class Selection:
    """The closing pass's choice at ``iteration``: cross-validated accuracy of the start's and of
    the trained program's training answers, and the start's W when it was kept."""

    iteration: int
    start_accuracy: float
    trained_accuracy: float
    kept_start: np.ndarray | None

    @classmethod
    def between(cls, iteration: int, mapping: Mapping, labels: np.ndarray, w0: np.ndarray, at_start: np.ndarray, trained: np.ndarray) -> Selection:
        start, end = cross_validated_correct(mapping, at_start, labels), cross_validated_correct(mapping, trained, labels)
        only_start, only_trained = int(np.sum(start & ~end)), int(np.sum(end & ~start))
        better = only_start - only_trained > SIGNIFICANCE * np.sqrt(only_start + only_trained)
        return cls(iteration, float(start.mean()), float(end.mean()), w0 if better else None)

    def served(self, w: np.ndarray, iteration: int) -> np.ndarray:
        """The program predictions use at ``iteration`` (a run extended past its choice serves its W)."""
        return self.kept_start if self.kept_start is not None and iteration == self.iteration else w

    def as_json(self) -> dict:
        return {"kept": "start" if self.kept_start is not None else "trained",
                "start_heldout_accuracy": self.start_accuracy, "trained_heldout_accuracy": self.trained_accuracy}

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"selection.at": np.asarray(self.iteration), "selection.heldout": np.array([self.start_accuracy, self.trained_accuracy])}
        return arrays | ({"selection.w": self.kept_start} if self.kept_start is not None else {})

    @classmethod
    def restored(cls, arrays: dict[str, np.ndarray]) -> Selection | None:
        if "selection.at" not in arrays:
            return None
        start, trained = (float(v) for v in arrays["selection.heldout"])
        return cls(int(arrays["selection.at"]), start, trained, arrays.get("selection.w"))


def served_program(arrays: dict[str, np.ndarray], iteration: int) -> np.ndarray:
    """A checkpoint's program as predictions use it (exports, eval, predict)."""
    selection = Selection.restored(arrays)
    return arrays["w"] if selection is None else selection.served(arrays["w"], iteration)
