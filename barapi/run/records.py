"""What a run reports as it goes (Progress), what it ends with (RunResult), and the state its
stages carry from one to the next (State)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from barapi.method.mapping import Mapping


@dataclass
class Progress:
    phase: str  # "mapping", "candidates" (a portfolio's), "training", "reading" (the readout's closing pass), "evaluating", "done"
    iteration: int
    iterations: int
    loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    queries_paid: int
    queries_cached: int
    cost_usd: float
    elapsed_s: float
    notice: str | None = None  # something the user should know about the run's set-up


@dataclass
class RunResult:
    run: str
    status: str  # completed | budget_exhausted
    iterations: int
    queries: int
    queries_paid: int
    queries_cached: int
    cost_usd: float
    budget_usd: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    program_sha256: str
    step_signal: float | None = None  # StepSignal.ratio: ≈ 0 when the program's steps were a random walk
    step_signal_expected: float | None = None  # what exact directional derivatives would give at these steps
    step_signal_null_sd: float | None = None  # its sd for steps that knew nothing (about 0)
    selection: dict | None = None  # Selection.as_json: which program the closing pass kept, and why
    views: int = 1  # programs each prediction is sent through
    candidates_paid: int | None = None  # a portfolio's candidates answered on the training images
    validation_loss: float | None = None  # a portfolio's cross-validated log-loss on the training images
    free_baseline: dict | None = None  # what the free views reach alone on the training images, cross-validated (barapi.method.free)
    api_gain: dict | None = None  # what a portfolio's views add to that, nested cross-validation (barapi.method.gain)

    @property
    def queries_per_prediction(self) -> int:
        return self.views

    def as_json(self) -> dict:
        return asdict(self) | {"queries_per_prediction": self.queries_per_prediction}


@dataclass
class State:
    iteration: int
    vocabulary: list[str]
    mapping: Mapping
    recent_correct: np.ndarray  # correctness at W of the latest training samples (≤ one epoch)
    last_loss: float | None


@dataclass
class ProbeResult:
    run: str  # the probe's own run on the store
    adds: bool | None  # whether the API's answers add to the images alone beyond noise (None: too few images to tell)
    free_baseline: dict
    api_gain: dict | None
    candidates: int
    queries_paid: int
    queries_cached: int
    cost_usd: float
    full_run: dict  # what the run probed for costs now (the probe's answers among its cached ones)

    @property
    def verdict(self) -> str:
        return {True: "the API adds", False: "the API adds nothing beyond noise", None: "too few training images to tell"}[self.adds]

    def as_json(self) -> dict:
        return asdict(self) | {"verdict": self.verdict}
