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
    logged: bool = True  # reads log-scores (an API's answers); else the features as they are (a free view's)

    @classmethod
    def fit(cls, dense: np.ndarray, labels: np.ndarray, n_classes: int, l2: float, steps: int = FIT_STEPS, *, logged: bool = True,
            spread: float = 1.0) -> LinearReadout:
        """Minimise mean cross-entropy + l2/2·‖weights‖² by Nesterov-accelerated gradient
        descent with step 1/L (L: the loss's Lipschitz constant, from the Gram matrix).
        ``spread``: each standardised feature's scale (1/√d: a block of d features weighs as one)."""
        x = features(dense) if logged else dense.astype(np.float64)
        mean, scale = x.mean(axis=0), (x.std(axis=0) + 1e-6) / spread
        z = cls._design((x - mean) / scale)
        n = len(z)
        lipschitz = float(np.linalg.eigvalsh(z @ z.T / n)[-1]) / 2 + l2
        targets = np.eye(n_classes)[labels]
        weights = accelerated_descent(lambda w: z.T @ (softmax(z @ w) - targets) / n + l2 * w, np.zeros((z.shape[1], n_classes)), lipschitz, steps)
        return cls(mean, scale, weights, logged)

    @staticmethod
    def _design(standardised: np.ndarray) -> np.ndarray:
        return np.hstack([standardised, np.ones((len(standardised), 1))])

    def target_scores(self, dense: np.ndarray) -> np.ndarray:
        """(n, K) source probabilities → (n, C) target-class probabilities."""
        x = features(dense) if self.logged else dense
        return softmax(self._design((x - self.mean) / self.scale) @ self.weights)

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "weights": self.weights} | ({} if self.logged else {"logged": np.asarray(False)})

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> LinearReadout:
        return cls(np.asarray(state["mean"]), np.asarray(state["scale"]), np.asarray(state["weights"]), bool(state.get("logged", True)))


# Log-probabilities a block's readout gives its classes are floored here before pooling: one
# confidently wrong image must not outweigh every other image's evidence.
LOG_FLOOR = -10.0


def floored_log(probabilities: np.ndarray) -> np.ndarray:
    return np.maximum(np.log(probabilities + 1e-300), LOG_FLOOR)


@dataclass(frozen=True)
class LogLinearPool:
    """How a stacked readout combines its blocks: class scores Σ_b w_b · log p_b(class) + bias(class),
    a softmax over them (a log-linear pool of experts). B weights and C biases, fitted on the
    blocks' out-of-fold log-probabilities: few enough for 100 training images, where a full
    regression over every block's every class's log-probability overfits."""

    weights: np.ndarray  # (B,)
    bias: np.ndarray  # (C,)

    @classmethod
    def fit(cls, logs: np.ndarray, labels: np.ndarray, n_classes: int, l2: float, steps: int = FIT_STEPS) -> LogLinearPool:
        """``logs``: (n, B, C) floored log-probabilities. Mean cross-entropy + l2/2·‖w‖² by
        Nesterov-accelerated gradient descent from w = 1 (each block as it is), bias 0."""
        n, blocks, _ = logs.shape
        targets = np.eye(n_classes)[labels]
        design = np.concatenate([logs, np.broadcast_to(np.eye(n_classes), (n, n_classes, n_classes))], axis=1)  # (n, B + C, C)
        lipschitz = float(np.linalg.eigvalsh(np.einsum("npc,nqc->pq", design, design) / n)[-1]) / 2 + l2
        penalty = np.r_[np.full(blocks, l2), np.zeros(n_classes)]

        def gradient(theta: np.ndarray) -> np.ndarray:
            residual = softmax(np.einsum("p,npc->nc", theta, design)) - targets
            return np.einsum("npc,nc->p", design, residual) / n + penalty * (theta - np.r_[np.ones(blocks), np.zeros(n_classes)])

        theta = accelerated_descent(gradient, np.r_[np.ones(blocks), np.zeros(n_classes)], lipschitz, steps)
        return cls(theta[:blocks], theta[blocks:])

    @classmethod
    def even(cls, blocks: int, n_classes: int) -> LogLinearPool:
        """The blocks' product, each as it is (where too few images a class fit a pool)."""
        return cls(np.ones(blocks), np.zeros(n_classes))

    def target_scores(self, logs: np.ndarray) -> np.ndarray:
        return softmax(np.einsum("b,nbc->nc", self.weights, logs) + self.bias)

    def state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "bias": self.bias}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> LogLinearPool:
        return cls(np.asarray(state["weights"]), np.asarray(state["bias"]))


@dataclass(frozen=True)
class StackedReadout:
    """One readout over free and paid views (barapi.method.free says how it is chosen and
    judged): each block's readout (the paid views' answers side by side; each free view's
    features) and, over several, the stacking regression that combines their log-probabilities.
    It reads one row per image, the blocks side by side; ``columns``: each block's width."""

    blocks: tuple[LinearReadout, ...]
    columns: tuple[int, ...]
    combiner: LogLinearPool | None  # None: one block, read alone

    def target_scores(self, row: np.ndarray) -> np.ndarray:
        parts = np.split(row, np.cumsum(self.columns)[:-1], axis=1)
        scores = [block.target_scores(part) for block, part in zip(self.blocks, parts)]
        if self.combiner is None:
            return scores[0]
        return self.combiner.target_scores(np.stack([floored_log(s) for s in scores], axis=1))

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"columns": np.asarray(self.columns)}
        for i, block in enumerate(self.blocks):
            arrays |= {f"block{i}.{k}": v for k, v in block.state().items()}
        return arrays | ({f"combiner.{k}": v for k, v in self.combiner.state().items()} if self.combiner else {})

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> StackedReadout:
        columns = tuple(int(c) for c in arrays["columns"])
        blocks = tuple(LinearReadout.from_state(prefixed(arrays, f"block{i}.")) for i in range(len(columns)))
        combiner = prefixed(arrays, "combiner.")
        return cls(blocks, columns, LogLinearPool.from_state(combiner) if combiner else None)


def readout_from_state(arrays: dict[str, np.ndarray]) -> LinearReadout | StackedReadout:
    return StackedReadout.from_state(arrays) if "columns" in arrays else LinearReadout.from_state(arrays)


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}


def target_mapper(assignment: np.ndarray, readout: dict[str, np.ndarray]) -> LabelMap | LinearReadout | StackedReadout:
    """Source scores → target scores: the learned readout when there is one (mapping "linear",
    or a readout over free and paid views), else the m-to-1 label map."""
    return readout_from_state(readout) if readout else LabelMap(assignment)
