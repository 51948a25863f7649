"""Many views, one readout: a portfolio of programs read together.

One program taught by zeroth-order steps learns about one number per pair of queries; the
answers to *different, large* programs hold far more (bench/results/portfolio.md). A portfolio run pays for
N candidate programs' answers on the training images once, keeps the V whose answers
cross-validate best together (forward selection on the training images only), and serves one
readout over the V answers of each image: every prediction sends V queries. Zeroth-order steps
may then refine the chosen views one at a time (``refinement_blocks``; barapi.run.stages).

``PortfolioSearch`` is to the trainer what an optimiser is: it is asked for the next candidate,
told that candidate's answers, and at the end chooses. It knows nothing of queries or budgets.
Candidates are a registry (``CANDIDATES``): each draws the k-th program from the run's seed
alone, so a resumed or enlarged search regenerates the same bytes and finds them in the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from barapi.method.readout import LinearReadout, StackedReadout, accelerated_descent, features, prefixed, readout_from_state, softmax
from barapi.method.selection import FOLDS, stratified_folds
from barapi.method.streams import Stream, generator

# A portfolio's size when only --views or a price cap asks for one: 8 views of 48 candidates
# (bench/portfolio.py measures the alternatives).
DEFAULT_VIEWS = 8
DEFAULT_CANDIDATES = 48
# The default run by kind of API (barapi.run.planning.shaped; bench/results/portfolio.md): an API
# answering at most FEW_LABELS labels gets 8 views chosen of candidates (cosine bands), as many as
# CANDIDATE_QUERIES training queries pay for, 16 to 48 (48 at 100 training images, 20 at 500); a larger
# vocabulary gets MANY_LABEL_VIEWS views, its start and one candidate, no step: the cheapest shape
# whose accuracy cross-validated on the training images is within a standard error of the best's,
# on both 1,000-label cells (bench/results/value.md; the 20 steps it replaced cost 5 to 23 times
# the training queries). Measured at 2, 5 and 10 labels and at 1,000; counts between are not.
FEW_LABELS = 100
CANDIDATE_QUERIES = 10_000
MANY_LABEL_VIEWS = 2
# Random programs W ~ N(0, s²) in the program's basis, s cycling through these: small moves
# around grey, programs that saturate half the canvas, and near-binary ones.
RANDOM_SCALES = (0.5, 1.0, 2.0)
# The readout's L2 is chosen by the same cross-validation from these (mean cross-entropy +
# l2/2·‖weights‖²; 0.1 is scikit-learn's C = 0.1 at 100 images, what the first measurements used).
L2_GRID = (0.01, 0.1, 1.0)
SELECTION_L2 = 0.1
SELECTION_STEPS = 200


def random_candidate(start: np.ndarray, seed: int, k: int) -> np.ndarray:
    """The k-th candidate (k ≥ 1): W ~ N(0, s²), s cycling through RANDOM_SCALES."""
    scale = RANDOM_SCALES[(k - 1) % len(RANDOM_SCALES)]
    return generator(seed, Stream.CANDIDATE, k).normal(0.0, scale, size=start.shape)


def band_candidate(start: np.ndarray, seed: int, k: int) -> np.ndarray:
    """The k-th candidate: one 2-D cosine wave over W's grid (a frequency band: stripes or a
    checkerboard of random frequency and orientation), its phase random per channel, amplitude
    cycling through RANDOM_SCALES (×2: it saturates where the wave peaks)."""
    rng = generator(seed, Stream.CANDIDATE, k)
    rows, cols, channels = start.shape
    fy, fx = rng.integers(0, rows // 2 + 1), rng.integers(0, cols // 2 + 1)
    phase = rng.uniform(0, 2 * np.pi, channels)
    wave = 2 * np.pi * (fy * np.arange(rows)[:, None] / rows + fx * np.arange(cols)[None, :] / cols)
    return 2 * RANDOM_SCALES[(k - 1) % len(RANDOM_SCALES)] * np.cos(wave[:, :, None] + phase)


def cast_candidate(start: np.ndarray, seed: int, k: int) -> np.ndarray:
    """The k-th candidate: a colour cast (one value per channel over the whole program, drawn
    N(0, (2s)²)) with a little texture on it (N(0, (s/4)²) per coordinate)."""
    rng = generator(seed, Stream.CANDIDATE, k)
    scale = RANDOM_SCALES[(k - 1) % len(RANDOM_SCALES)]
    return rng.normal(0.0, 2 * scale, start.shape[-1]) + rng.normal(0.0, scale / 4, start.shape)


def mixed_candidate(start: np.ndarray, seed: int, k: int) -> np.ndarray:
    """Random, band and cast candidates in turn."""
    family = (random_candidate, band_candidate, cast_candidate)[(k - 1) % 3]
    return family(start, seed, k)


# The candidate families a portfolio draws from, by name (--candidate-family).
CANDIDATES: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "random": random_candidate, "bands": band_candidate, "casts": cast_candidate, "mixed": mixed_candidate,
}


@dataclass(frozen=True)
class Portfolio:
    """What predictions use: V programs and one readout over their answers, side by side."""

    programs: np.ndarray  # (V, *W's shape); none where the free views are served alone (barapi.method.joint)
    readout: LinearReadout | StackedReadout  # over the V views' dense answers side by side, then the free views' features
    chosen: np.ndarray  # (V,) candidate indices, in the order chosen
    validation_loss: float  # the chosen views' cross-validated log-loss on the training images
    refinement_steps: int = 0  # the zeroth-order steps its views' refinement is laid out for (refinement_blocks)
    free: tuple[str, ...] = ()  # the free views the readout reads after the paid ones (barapi.method.views)

    @property
    def views(self) -> int:
        return len(self.programs)

    def target_scores(self, dense: np.ndarray) -> np.ndarray:
        """(n, V·labels [+ free features]) → (n, classes); a Mapper, so the trainer serves it like any mapping."""
        return self.readout.target_scores(dense)

    def with_view(self, view: int, program: np.ndarray, answers: list[np.ndarray], labels: np.ndarray, n_classes: int) -> Portfolio:
        """This portfolio with one view's program replaced, the readout refitted on every view's
        training answers (``answers``: the views' in order, that view's at its new program)."""
        programs = self.programs.copy()
        programs[view] = program
        readout, loss = fitted_readout(answers, labels, n_classes)
        return replace(self, programs=programs, readout=readout, validation_loss=loss)

    def state(self) -> dict[str, np.ndarray]:
        return {"portfolio.programs": self.programs, "portfolio.chosen": self.chosen, "portfolio.validation_loss": np.asarray(self.validation_loss),
                "portfolio.refinement_steps": np.asarray(self.refinement_steps)} | {
            f"portfolio.readout.{k}": v for k, v in self.readout.state().items()
        } | ({"portfolio.free": np.asarray(self.free, dtype=str)} if self.free else {})

    @classmethod
    def restored(cls, arrays: dict[str, np.ndarray]) -> Portfolio | None:
        if "portfolio.programs" not in arrays:
            return None
        readout = prefixed(arrays, "portfolio.readout.")
        loss = float(arrays.get("portfolio.validation_loss", np.nan))
        free = tuple(str(spec) for spec in arrays.get("portfolio.free", ()))
        return cls(np.asarray(arrays["portfolio.programs"]), readout_from_state(readout), np.asarray(arrays["portfolio.chosen"]), loss,
                   int(arrays.get("portfolio.refinement_steps", 0)), free)


def refinement_blocks(steps: int, views: int) -> np.ndarray:
    """Where each view's refinement starts, and the end: the steps dealt out to the views in
    order, in blocks as equal as they divide (some empty when there are fewer steps than views).
    One view at a time, because a step on a view reads the other views' answers on its batch, and
    those are every training image's answers at their current programs, paid once when a view's
    block ends rather than V − 1 more queries per image at every step."""
    return np.arange(views + 1) * steps // views


def view_of(blocks: np.ndarray, step: int) -> int:
    """The view whose block holds ``step``."""
    return int(np.searchsorted(blocks, step, side="right")) - 1


class PortfolioSearch:
    """Ask for candidates, tell their answers on the training images, then choose V of them."""

    def __init__(self, views: int, n_classes: int, generate: str = "random", earlier: np.ndarray | None = None) -> None:
        self.views, self.n_classes = views, n_classes
        self.generate = CANDIDATES[generate]
        self.earlier = [] if earlier is None else list(earlier)  # programs of earlier runs, tried first
        self.answers: list[np.ndarray] = []  # (n, labels) per candidate told so far

    def candidate(self, k: int, start: np.ndarray, seed: int) -> np.ndarray:
        """Candidate 0 is the run's own start (the zero-program), then the earlier runs' programs;
        the rest come from the registry, numbered as in a run without earlier ones (so the two
        share their cached answers)."""
        if k == 0:
            return start
        return self.earlier[k - 1] if k <= len(self.earlier) else self.generate(start, seed, k - len(self.earlier))

    def tell(self, dense: np.ndarray) -> None:
        self.answers.append(dense)

    def choose(self, labels: np.ndarray, programs: list[np.ndarray]) -> Portfolio:
        """Forward selection of up to V views by cross-validated log-loss of the readout on the
        training images, then the readout's L2 by the same folds, then the readout itself on
        every training image."""
        views = [standardised(features(dense)) for dense in self.answers]
        chosen = forward_selection([v @ v.T for v in views], min(self.views, len(views)), CrossValidation(labels, self.n_classes))
        readout, loss = fitted_readout([self.answers[c] for c in chosen], labels, self.n_classes)
        return Portfolio(np.stack([programs[c] for c in chosen]), readout, np.asarray(chosen), loss)


def fitted_readout(answers: list[np.ndarray], labels: np.ndarray, n_classes: int) -> tuple[LinearReadout, float]:
    """The readout over these views' training answers, its L2 chosen by cross-validation on the
    training images, and its cross-validated log-loss."""
    cv = CrossValidation(labels, n_classes)
    gram = paid_gram(answers)
    losses = {value: cv.log_loss(gram, value) for value in L2_GRID}
    l2 = min(losses, key=losses.get)
    return LinearReadout.fit(np.hstack(answers).astype(np.float64), labels, n_classes, l2), losses[l2]


def paid_gram(answers: list[np.ndarray]) -> np.ndarray:
    """The Gram matrix of the views' standardised log-answers, added up view by view."""
    return sum(v @ v.T for v in (standardised(features(dense)) for dense in answers))


def chosen_l2(gram: np.ndarray, cv: CrossValidation) -> float:
    """The readout's penalty of L2_GRID with the least cross-validated log-loss."""
    return min(L2_GRID, key=lambda value: cv.log_loss(gram, value))


def standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)


def forward_selection(grams: list[np.ndarray], views: int, cv: CrossValidation) -> list[int]:
    """Greedy: add the view whose answers lower the cross-validated log-loss most. Ties go to
    the earlier candidate, so the zero-program wins where nothing beats it."""
    chosen: list[int] = []
    total = np.zeros_like(grams[0])
    while len(chosen) < views:
        losses = [np.inf if k in chosen else cv.log_loss(total + g, SELECTION_L2, SELECTION_STEPS) for k, g in enumerate(grams)]
        best = int(np.argmin(losses))
        chosen.append(best)
        total = total + grams[best]
    return chosen


class CrossValidation:
    """Stratified folds (each class's images dealt in turn, deterministic) and the readout's
    held-out log-loss, fitted in its dual: with an L2 penalty the weights are a combination of
    the training rows, so a fit needs only the Gram matrix of the features, which adds up view
    by view and stays n × n however many labels the views hold."""

    def __init__(self, labels: np.ndarray, n_classes: int, folds: int = FOLDS) -> None:
        self.labels, self.n_classes = labels, n_classes
        self.fold = stratified_folds(labels, folds)
        self.folds = min(folds, int(np.bincount(labels).min()))

    def log_loss(self, gram: np.ndarray, l2: float, steps: int = 400) -> float:
        """Mean held-out cross-entropy of a readout over features whose Gram matrix is ``gram``
        (the bias is its own feature, as in ``LinearReadout``)."""
        kernel = gram + 1.0
        total = 0.0
        for k in range(self.folds):
            held, kept = self.fold == k, self.fold != k
            coefficients = fit_dual(kernel[np.ix_(kept, kept)], self.labels[kept], self.n_classes, l2, steps)
            probabilities = softmax(kernel[np.ix_(held, kept)] @ coefficients)
            total -= float(np.log(probabilities[np.arange(held.sum()), self.labels[held]] + 1e-12).sum())
        return total / len(self.labels)


def fit_dual(kernel: np.ndarray, labels: np.ndarray, n_classes: int, l2: float, steps: int) -> np.ndarray:
    """``LinearReadout.fit`` with weights = Zᵀ·A: the same Nesterov iterations on A (n × C)."""
    n = len(kernel)
    lipschitz = float(np.linalg.eigvalsh(kernel / n)[-1]) / 2 + l2
    targets = np.eye(n_classes)[labels]
    return accelerated_descent(lambda a: (softmax(kernel @ a) - targets) / n + l2 * a, np.zeros((n, n_classes)), lipschitz, steps)
