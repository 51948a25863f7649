"""Zeroth-order optimisation, ask/tell.

Three separate things, as in ART/foolbox: an *estimator* says which points to evaluate and turns
their losses into a gradient estimate; a *step rule* turns a gradient into an update; the
``ZerothOrderOptimizer`` joins them behind ``ask()`` / ``tell(losses)`` so the trainer never
knows which estimator or rule it drives. ``ask`` always puts the unperturbed W first, so the
trainer reads f(W) (loss, accuracy and answers at the current program) from the same queries.

Randomness comes in through ``ask(rng)``: the trainer derives one generator per iteration
(``barapi.method.streams``), which is what makes a resumed run bit-identical.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from barapi.errors import ConfigError
from barapi.method.cmaes import CMAES
from barapi.method.estimators import ESTIMATORS, Estimator
from barapi.method.signal import StepSignal
from barapi.method.steps import STEP_RULES, StepRule


class Optimizer(Protocol):
    """What the trainer drives: ``ask`` the programs to query (the current W first), ``tell``
    their losses; ``w`` is the current program (setting it starts afresh from there)."""

    w: np.ndarray
    signal: StepSignal

    @property
    def queries_per_sample(self) -> int: ...
    def ask(self, rng: np.random.Generator) -> list[np.ndarray]: ...
    def tell(self, losses: list[float] | np.ndarray) -> np.ndarray: ...
    def state(self) -> dict[str, np.ndarray]: ...
    def load(self, state: dict[str, np.ndarray]) -> None: ...


class ZerothOrderOptimizer:
    """ask() → the parameter vectors to evaluate (the current W first); tell(losses) → update."""

    def __init__(self, w: np.ndarray, estimator: Estimator, rule: StepRule) -> None:
        self.w = np.array(w, dtype=np.float64)
        self.estimator = estimator
        self.rule = rule
        self.signal = StepSignal(self.w.shape)
        self._pending = False

    @property
    def queries_per_sample(self) -> int:
        return self.estimator.queries_per_sample + int(self.rule.looks_ahead)

    def ask(self, rng: np.random.Generator) -> list[np.ndarray]:
        """The first candidate is always W itself, where the trainer reads the loss, accuracy
        and answers at the current program; a rule that estimates the gradient at a look-ahead
        point asks for W apart, before the estimator's points around it."""
        self._pending = True
        centre = self.rule.evaluation_point(self.w)
        points = [centre + offset for offset in self.estimator.offsets(rng, self.w.shape)]
        return [self.w.copy(), *points] if self.rule.looks_ahead else points

    def tell(self, losses: list[float] | np.ndarray) -> np.ndarray:
        if not self._pending:
            raise RuntimeError("tell() without a matching ask()")
        losses = np.asarray(losses, dtype=np.float64)
        gradient = self.estimator.gradient(losses[1:] if self.rule.looks_ahead else losses)
        self.signal.add(gradient)
        self.w = self.rule.step(self.w, gradient)
        self._pending = False
        return gradient

    def state(self) -> dict[str, np.ndarray]:
        return {"w": self.w} | {f"rule.{k}": v for k, v in self.rule.state().items()} | self.signal.state()

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.w = np.array(state["w"], dtype=np.float64)
        self.rule.load({k.removeprefix("rule."): v for k, v in state.items() if k.startswith("rule.")})
        self.signal = StepSignal.restored(state, self.w.shape)


@dataclass(frozen=True)
class StepSettings:
    """What an optimiser is built from (barapi.run.strategies reads them from a run's config)."""

    estimator: str  # zeroth-order estimators only
    q: int  # directions per estimate; CMA-ES: half its population
    beta: float  # the perturbation's radius
    lr: float
    lr_decay: float


def zeroth_order(rule: str) -> Callable[[np.ndarray, StepSettings], Optimizer]:
    """A step rule driving the run's zeroth-order estimator."""
    return lambda w, s: make_optimizer(w, estimator=s.estimator, q=s.q, beta=s.beta, optimizer=rule, lr=s.lr, lr_decay=s.lr_decay)


def cma_es(w: np.ndarray, settings: StepSettings) -> Optimizer:
    """A population of 2q programs a step, spread over the radius that moves W as β does."""
    return CMAES(w, population=2 * settings.q, sigma=settings.beta / np.sqrt(w.size))


# Every optimiser by name: the step rules (each with the run's estimator), and CMA-ES.
OPTIMIZERS: dict[str, Callable[[np.ndarray, StepSettings], Optimizer]] = {rule: zeroth_order(rule) for rule in STEP_RULES} | {CMAES.name: cma_es}


def make_optimizer(w: np.ndarray, *, estimator: str, q: int, beta: float, optimizer: str, lr: float, lr_decay: float) -> ZerothOrderOptimizer:
    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown estimator {estimator!r}: choose one of {', '.join(ESTIMATORS)}")
    if optimizer not in STEP_RULES:
        raise ConfigError(f"unknown step rule {optimizer!r}: choose one of {', '.join(STEP_RULES)}")
    return ZerothOrderOptimizer(w, ESTIMATORS[estimator](q=q, beta=beta), STEP_RULES[optimizer](lr=lr, decay=lr_decay))
