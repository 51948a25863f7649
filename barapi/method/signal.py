"""The step signal: how far a run's steps added up beyond a random walk, read against its null
and against what exact directional derivatives would give."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SignalReading:
    """A run's step signal beside what it would be if the answers carried nothing (0, with
    ``null_sd``) and if every estimate were made of exact directional derivatives of a fixed
    gradient (``expected`` = T·q/d: each of q directions in d coordinates sees 1/d of ‖g‖²)."""

    ratio: float
    expected: float
    null_sd: float

    @property
    def random_walk(self) -> bool:
        """Inside the null's ±2 sd: what steps that knew nothing would read."""
        return abs(self.ratio) <= 2 * self.null_sd

    def describe(self, steps: int) -> str:
        band = f"steps that knew nothing read 0 ± {2 * self.null_sd:.2f}"
        if self.random_walk:
            return (f"signal-to-noise {self.ratio:.2f}: indistinguishable from a random walk ({band}); "
                    f"exact derivatives would give about {self.expected:.2f} at these {steps} steps")
        if self.ratio < 0:
            return f"signal-to-noise {self.ratio:.2f}: below a random walk's band ({band}): the steps undid each other more than chance"
        return (f"signal-to-noise {self.ratio:.2f}: above a random walk ({band}), {self.ratio / self.expected:.0%} of the "
                f"{self.expected:.2f} exact derivatives would give at these {steps} steps")


def signal_figures(reading: SignalReading | None) -> dict[str, float | None]:
    """The step signal's band, as `train --json` and `runs show` report it."""
    if reading is None:
        return {"step_signal_expected": None, "step_signal_null_sd": None}
    return {"step_signal_expected": round(reading.expected, 6), "step_signal_null_sd": round(reading.null_sd, 6)}


class StepSignal:
    """How far a run's gradient estimates, added up, stand above their own noise.

    Each estimate is the gradient plus noise drawn afresh at every step (directions, batch).
    Over T steps ‖Σĝ‖² − Σ‖ĝ‖² estimates T(T−1)·‖g‖² without bias and Σ‖ĝ‖²/T estimates
    E‖ĝ‖², so ``ratio`` = T·‖g‖² / E‖ĝ‖² is the signal-to-noise of the summed steps: about 0
    when they were a random walk, 1 or more when their sum points along the gradient. It reads
    only the estimates the run has paid for (bench/results/zo_signal.md: how many queries a W of
    d numbers needs before it reaches 1).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.total = np.zeros(shape)
        self.squares = 0.0
        self.steps = 0

    def add(self, estimate: np.ndarray) -> None:
        self.total = self.total + estimate
        self.squares += float(np.sum(estimate**2))
        self.steps += 1

    @property
    def ratio(self) -> float | None:
        if self.steps < 2 or self.squares == 0:
            return None
        return self.steps * (float(np.sum(self.total**2)) / self.squares - 1) / (self.steps - 1)

    def reading(self, directions: int) -> SignalReading | None:
        """The ratio with its null band (sd √(2T/((T−1)d)) for T independent estimates in d
        coordinates with no common direction) and its exact-derivative expectation."""
        ratio, d = self.ratio, self.total.size
        if ratio is None:
            return None
        return SignalReading(ratio, self.steps * directions / d, float(np.sqrt(2 * self.steps / ((self.steps - 1) * d))))

    def state(self) -> dict[str, np.ndarray]:
        return {"signal.total": self.total, "signal.squares": np.asarray(self.squares), "signal.steps": np.asarray(self.steps)}

    @classmethod
    def restored(cls, arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> StepSignal:
        """From a checkpoint's arrays; counting from now if they hold none (written before runs kept it)."""
        signal = cls(shape)
        if "signal.steps" in arrays:
            signal.total, signal.squares, signal.steps = np.array(arrays["signal.total"]), float(arrays["signal.squares"]), int(arrays["signal.steps"])
        return signal
