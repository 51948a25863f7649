"""A learned linear readout from the provider's label scores to the target classes.

BAR maps m source labels to each target class and averages them; that uses 10·m of the ~1,000
scores an API returns and throws the rest away. The readout instead fits a multinomial logistic
regression on the log-scores of *every* label, from the answers the label mapping already paid
for (the "full label mapping" of the visual-prompting literature, fitted black-box). It costs no
extra query and is deterministic: the objective is strongly convex (L2), minimised by
accelerated gradient descent from zero for a fixed number of steps, so a resumed run refits
exactly the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from barapi.method.labels import LabelMap

# Scores are floored before the log: providers round small scores to 0 (and top-k fill-in
# spreads tiny masses), and log(0) would make one rounding step an infinite feature.
SCORE_FLOOR = 1e-7
FIT_STEPS = 400


def features(dense: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(dense, 0.0) + SCORE_FLOOR)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def accelerated_descent(gradient: Callable[[np.ndarray], np.ndarray], start: np.ndarray, lipschitz: float, steps: int) -> np.ndarray:
    """Nesterov's accelerated gradient descent with step 1/L, a fixed number of steps: the same
    iterates for the same inputs, so a resumed run refits exactly the same weights."""
    weights = start
    look_ahead, momentum = weights.copy(), 1.0
    for _ in range(steps):
        updated = look_ahead - gradient(look_ahead) / lipschitz
        next_momentum = (1 + np.sqrt(1 + 4 * momentum**2)) / 2
        look_ahead = updated + (momentum - 1) / next_momentum * (updated - weights)
        weights, momentum = updated, next_momentum
    return weights


@dataclass(frozen=True)
class LinearReadout:
    mean: np.ndarray  # (K,) feature means of the fitting answers
    scale: np.ndarray  # (K,) their standard deviations
    weights: np.ndarray  # (K + 1, C): the last row is the bias

    @classmethod
    def fit(cls, dense: np.ndarray, labels: np.ndarray, n_classes: int, l2: float, steps: int = FIT_STEPS) -> LinearReadout:
        """Minimise mean cross-entropy + l2/2·‖weights‖² by Nesterov-accelerated gradient
        descent with step 1/L (L: the loss's Lipschitz constant, from the Gram matrix)."""
        x = features(dense)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        z = cls._design((x - mean) / scale)
        n = len(z)
        lipschitz = float(np.linalg.eigvalsh(z @ z.T / n)[-1]) / 2 + l2
        targets = np.eye(n_classes)[labels]
        weights = accelerated_descent(lambda w: z.T @ (softmax(z @ w) - targets) / n + l2 * w, np.zeros((z.shape[1], n_classes)), lipschitz, steps)
        return cls(mean, scale, weights)

    @staticmethod
    def _design(standardised: np.ndarray) -> np.ndarray:
        return np.hstack([standardised, np.ones((len(standardised), 1))])

    def target_scores(self, dense: np.ndarray) -> np.ndarray:
        """(n, K) source probabilities → (n, C) target-class probabilities."""
        return softmax(self._design((features(dense) - self.mean) / self.scale) @ self.weights)

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "weights": self.weights}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> LinearReadout:
        return cls(np.asarray(state["mean"]), np.asarray(state["scale"]), np.asarray(state["weights"]))


def target_mapper(assignment: np.ndarray, readout: dict[str, np.ndarray]) -> LabelMap | LinearReadout:
    """Source scores → target scores: the learned readout when there is one (mapping "linear"),
    else the m-to-1 label map."""
    return LinearReadout.from_state(readout) if readout else LabelMap(assignment)
