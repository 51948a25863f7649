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
from typing import TYPE_CHECKING, Protocol

import numpy as np

from barapi.errors import ConfigError

if TYPE_CHECKING:
    from barapi.config import MethodConfig


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
# "spsa-gc" is the SPSA estimator driven by the Nesterov gradient-correction rule.
STEP_RULES: dict[str, Callable[..., StepRule]] = {"sgd": SGD, "adam": Adam, "sign-sgd": SignSGD, "nesterov-gc": NesterovGC}


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


class _Normal:
    """cma's ``randn`` option, drawing from the generator the trainer hands to ``ask``: the
    search's only randomness then comes from the run's streams, as every estimator's does."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


class CMAES:
    """CMA-ES (Hansen's kept ``cma`` package) on W: each step samples ``population`` programs
    around the mean W and moves the mean and the sampling distribution by their losses' ranks
    alone; no gradient is estimated. With population 2q a step costs what a two-sided estimate
    of q directions costs. The covariance is diagonal (sep-CMA): a full d×d matrix learns in
    O(d²) evaluations, out of reach of these budgets. σ0 = β/√d, the estimator's perturbation
    per coordinate.

    cma's state is not a set of arrays, so the checkpoint keeps what it needs to rebuild it
    exactly: the start, and each step's sampling seed and losses, replayed into a fresh strategy
    on load (no query; milliseconds a step)."""

    name = "cma-es"

    def __init__(self, w: np.ndarray, population: int, sigma: float) -> None:
        if population < 2 or sigma <= 0:
            raise ConfigError("CMA-ES needs a population of at least 2 and a positive step size")
        self.population, self.sigma = population, sigma
        self.w = np.array(w, dtype=np.float64)

    @property
    def w(self) -> np.ndarray:
        return self._w

    @w.setter
    def w(self, w: np.ndarray) -> None:
        import cma

        self._start = self._w = np.array(w, dtype=np.float64)
        self._normal = _Normal()
        options = {"popsize": self.population, "CMA_diagonal": True, "randn": self._normal, "seed": np.nan,
                   "verbose": -9, "verb_log": 0, "verb_disp": 0, "tolfun": 0, "tolx": 0, "tolstagnation": 10**9}
        self._strategy = cma.CMAEvolutionStrategy(self._start.ravel(), self.sigma, options)
        self._version = cma.__version__
        self._seeds: list[int] = []
        self._losses: list[np.ndarray] = []
        self._asked: list[np.ndarray] | None = None
        self.signal = StepSignal(self._start.shape)

    @property
    def queries_per_sample(self) -> int:
        return self.population + 1

    def ask(self, rng: np.random.Generator) -> list[np.ndarray]:
        seed = int(rng.integers(2**63))
        self._asked = self._sample(seed)
        self._seeds.append(seed)
        return [self._w.copy(), *(x.reshape(self._w.shape) for x in self._asked)]

    def _sample(self, seed: int) -> list[np.ndarray]:
        self._normal.rng = np.random.default_rng(seed)
        return self._strategy.ask()

    def tell(self, losses: list[float] | np.ndarray) -> np.ndarray:
        if self._asked is None:
            raise RuntimeError("tell() without a matching ask()")
        around = np.asarray(losses, dtype=np.float64)[1:]  # the first loss is W's own, read by the trainer
        self._losses.append(around)
        step = self._update(self._asked, around)
        self._asked = None
        self.signal.add(step)
        return step

    def _update(self, asked: list[np.ndarray], losses: np.ndarray) -> np.ndarray:
        before = self._w
        self._strategy.tell(asked, list(losses))
        self._w = np.array(self._strategy.mean).reshape(before.shape)
        return self._w - before

    def state(self) -> dict[str, np.ndarray]:
        return {"w": self._w, "cma.start": self._start, "cma.version": np.asarray(self._version), "cma.seeds": np.asarray(self._seeds, dtype=np.int64),
                "cma.losses": np.asarray(self._losses).reshape(len(self._losses), self.population)} | self.signal.state()

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.w = state["cma.start"]
        for seed, losses in zip(state["cma.seeds"], state["cma.losses"], strict=True):
            self._seeds.append(int(seed))
            self._losses.append(np.array(losses))
            self._update(self._sample(int(seed)), np.array(losses))
        if not np.array_equal(self._w, state["w"]):
            raise ConfigError(f"this run's CMA-ES steps replay to another program under cma {self._version}: resume it with the "
                              f"cma that trained it (pip install cma=={state['cma.version']}), or start a new run")
        self.signal = StepSignal.restored(state, self._w.shape)


def optimizer_for(method: MethodConfig, w: np.ndarray | None = None) -> Optimizer:
    """A run's optimiser, at W (zeros until the run's start sets it)."""
    w = np.zeros(method.geometry.parameter_shape) if w is None else w
    if method.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {method.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[method.optimizer](method, w)


def zeroth_order(rule: str) -> Callable[[MethodConfig, np.ndarray], Optimizer]:
    """A step rule driving the run's zeroth-order estimator."""
    return lambda method, w: make_optimizer(w, estimator=method.estimator, q=method.q, beta=method.perturbation_radius, optimizer=rule,
                                            lr=method.lr, lr_decay=method.lr_decay)


def cma_es(method: MethodConfig, w: np.ndarray) -> Optimizer:
    """A population of 2q programs a step, spread over the radius that moves W as β does."""
    return CMAES(w, population=2 * method.q, sigma=method.perturbation_radius / np.sqrt(w.size))


# Every optimiser by name: the step rules (each with the run's estimator), and CMA-ES.
OPTIMIZERS: dict[str, Callable[[MethodConfig, np.ndarray], Optimizer]] = {rule: zeroth_order(rule) for rule in STEP_RULES} | {CMAES.name: cma_es}


def make_optimizer(w: np.ndarray, *, estimator: str, q: int, beta: float, optimizer: str, lr: float, lr_decay: float) -> ZerothOrderOptimizer:
    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown estimator {estimator!r}: choose one of {', '.join(ESTIMATORS)}")
    if optimizer not in STEP_RULES:
        raise ConfigError(f"unknown step rule {optimizer!r}: choose one of {', '.join(STEP_RULES)}")
    return ZerothOrderOptimizer(w, ESTIMATORS[estimator](q=q, beta=beta), STEP_RULES[optimizer](lr=lr, decay=lr_decay))
