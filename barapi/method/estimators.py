"""Estimators: which points to evaluate around W, and how their losses become a gradient
estimate. The registry ESTIMATORS names them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from barapi.errors import ConfigError


def unit_sphere(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    u = rng.standard_normal(shape)
    return u / np.linalg.norm(u)


class Estimator(Protocol):
    queries_per_sample: int
    informed: bool  # whether its estimate follows the gradient (False: the null, a control)

    def offsets(self, rng: np.random.Generator, shape: tuple[int, ...]) -> list[np.ndarray]: ...
    def gradient(self, losses: np.ndarray) -> np.ndarray: ...


class OneSidedEstimator:
    """The paper's eq. (3)–(4): g = (b/q) Σ_j (f(W+βU_j) − f(W))/β · U_j, U_j uniform on the
    unit sphere, b = d by default (unbiased for the smoothed loss)."""

    name = "one-sided"
    informed = True  # its estimate points along the gradient on average (the null's does not)

    def __init__(self, q: int, beta: float, b: float | None = None) -> None:
        if q < 1 or beta <= 0:
            raise ConfigError("the estimator needs q ≥ 1 and beta > 0")
        self.q, self.beta, self.b = q, beta, b
        self.queries_per_sample = q + 1
        self._directions: list[np.ndarray] = []

    def offsets(self, rng: np.random.Generator, shape: tuple[int, ...]) -> list[np.ndarray]:
        self._directions = [unit_sphere(rng, shape) for _ in range(self.q)]
        return [np.zeros(shape)] + [self.beta * u for u in self._directions]

    def gradient(self, losses: np.ndarray) -> np.ndarray:
        d = self._directions[0].size
        b = self.b if self.b is not None else float(d)
        differences = (losses[1:] - losses[0]) / self.beta
        return b / self.q * np.tensordot(differences, np.stack(self._directions), axes=1)


class TwoSidedEstimator:
    """Antithetic pairs: g = (b/q) Σ_j (f(W+βU_j) − f(W−βU_j))/(2β) · U_j. Cancels the even
    terms of the Taylor expansion (less bias) for 2q+1 queries per sample."""

    name = "two-sided"
    informed = True

    def __init__(self, q: int, beta: float, b: float | None = None) -> None:
        if q < 1 or beta <= 0:
            raise ConfigError("the estimator needs q ≥ 1 and beta > 0")
        self.q, self.beta, self.b = q, beta, b
        self.queries_per_sample = 2 * q + 1
        self._directions: list[np.ndarray] = []

    def offsets(self, rng: np.random.Generator, shape: tuple[int, ...]) -> list[np.ndarray]:
        self._directions = [unit_sphere(rng, shape) for _ in range(self.q)]
        return [np.zeros(shape)] + [self.beta * u for u in self._directions] + [-self.beta * u for u in self._directions]

    def gradient(self, losses: np.ndarray) -> np.ndarray:
        d = self._directions[0].size
        b = self.b if self.b is not None else float(d)
        differences = (losses[1 : self.q + 1] - losses[self.q + 1 :]) / (2 * self.beta)
        return b / self.q * np.tensordot(differences, np.stack(self._directions), axes=1)


class SPSAEstimator(TwoSidedEstimator):
    """Simultaneous perturbation (Spall): Rademacher directions ±1/√d, antithetic pairs. Every
    coordinate moves by exactly β/√d, so no coordinate hides under the 8-bit rounding."""

    name = "spsa"

    def offsets(self, rng: np.random.Generator, shape: tuple[int, ...]) -> list[np.ndarray]:
        size = int(np.prod(shape))
        self._directions = [rng.choice((-1.0, 1.0), size=shape) / np.sqrt(size) for _ in range(self.q)]
        return [np.zeros(shape)] + [self.beta * u for u in self._directions] + [-self.beta * u for u in self._directions]


class NullEstimator(TwoSidedEstimator):
    """The null: a two-sided estimate whose losses at the perturbed points are shuffled among
    them first, so W takes steps of the same size in directions that carry nothing about the
    loss. What a run gains beyond this is what its estimates knew. The shuffle is drawn from the
    step's own generator: the same for the same seed, and after a resume."""

    name = "null"
    informed = False  # its steps know nothing of the loss, by design

    def offsets(self, rng: np.random.Generator, shape: tuple[int, ...]) -> list[np.ndarray]:
        offsets = super().offsets(rng, shape)
        self._order = rng.permutation(2 * self.q)
        return offsets

    def gradient(self, losses: np.ndarray) -> np.ndarray:
        return super().gradient(np.concatenate([losses[:1], np.asarray(losses[1:])[self._order]]))


ESTIMATORS: dict[str, Callable[..., Estimator]] = {
    OneSidedEstimator.name: OneSidedEstimator,
    TwoSidedEstimator.name: TwoSidedEstimator,
    SPSAEstimator.name: SPSAEstimator,
    NullEstimator.name: NullEstimator,
}
