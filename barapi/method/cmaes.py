"""CMA-ES on W through Hansen's kept ``cma`` package, behind the same ask/tell as every optimiser."""

from __future__ import annotations

import numpy as np

from barapi.errors import ConfigError
from barapi.method.signal import StepSignal


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
