"""Step rules: a gradient estimate → a move of W. The registry STEP_RULES names them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np


class StepRule(Protocol):
    looks_ahead: bool  # evaluation_point is not W: the loss at W must be asked for apart

    def step(self, w: np.ndarray, gradient: np.ndarray) -> np.ndarray: ...
    def evaluation_point(self, w: np.ndarray) -> np.ndarray: ...
    def state(self) -> dict[str, np.ndarray]: ...
    def load(self, state: dict[str, np.ndarray]) -> None: ...


class SGD:
    """W ← W − η·decay^t·g: the paper's SGD with exponentially decaying step."""

    looks_ahead = False

    def __init__(self, lr: float, decay: float = 1.0) -> None:
        self.lr, self.decay, self.t = lr, decay, 0

    def evaluation_point(self, w: np.ndarray) -> np.ndarray:
        return w

    def step(self, w: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        rate = self.lr * self.decay**self.t
        self.t += 1
        return w - rate * gradient

    def state(self) -> dict[str, np.ndarray]:
        return {"t": np.asarray(self.t)}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"])


class SignSGD(SGD):
    """W ← W − η·decay^t·sign(g): only the sign of each estimated coordinate (ZO-signSGD)."""

    def step(self, w: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        return super().step(w, np.sign(gradient))


class NesterovGC:
    """SPSA-GC's update (BlackVIP, CVPR 2023): the gradient is estimated at the look-ahead
    point W + μ·v, then v ← μ·v − η_t·g and W ← W + v (gradient correction by momentum)."""

    looks_ahead = True

    def __init__(self, lr: float, decay: float = 1.0, momentum: float = 0.9) -> None:
        self.lr, self.decay, self.momentum, self.t = lr, decay, momentum, 0
        self.velocity: np.ndarray | None = None

    def evaluation_point(self, w: np.ndarray) -> np.ndarray:
        return w if self.velocity is None else w + self.momentum * self.velocity

    def step(self, w: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        velocity = np.zeros_like(w) if self.velocity is None else self.velocity
        self.velocity = self.momentum * velocity - self.lr * self.decay**self.t * gradient
        self.t += 1
        return w + self.velocity

    def state(self) -> dict[str, np.ndarray]:
        return {"t": np.asarray(self.t)} | ({"velocity": self.velocity} if self.velocity is not None else {})

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"])
        self.velocity = np.array(state["velocity"]) if "velocity" in state else None


class Adam:
    """ZO-AdaMM: Adam's moments on the estimated gradient, with the same exponential decay."""

    looks_ahead = False

    def __init__(self, lr: float, decay: float = 1.0, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr, self.decay, self.beta1, self.beta2, self.eps = lr, decay, beta1, beta2, eps
        self.t = 0
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None

    def evaluation_point(self, w: np.ndarray) -> np.ndarray:
        return w

    def step(self, w: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        if self.m is None or self.v is None:
            self.m, self.v = np.zeros_like(w), np.zeros_like(w)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1 - self.beta2) * gradient**2
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        rate = self.lr * self.decay ** (self.t - 1)
        return w - rate * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict[str, np.ndarray]:
        state = {"t": np.asarray(self.t)}
        if self.m is not None and self.v is not None:
            state |= {"m": self.m, "v": self.v}
        return state

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"])
        self.m = np.array(state["m"]) if "m" in state else None
        self.v = np.array(state["v"]) if "v" in state else None


# "spsa-gc" is the SPSA estimator driven by the Nesterov gradient-correction rule.
STEP_RULES: dict[str, Callable[..., StepRule]] = {"sgd": SGD, "adam": Adam, "sign-sgd": SignSGD, "nesterov-gc": NesterovGC}
