"""The contract between a run's session (barapi.run.trainer) and what it drives: what a stage
may use of the run — its data and program, the queries it may ask (through the budget, cache and
ledger), the money it must leave for the run's ending, checkpoints and progress — and what a
stage gives back: its own state, saved with every checkpoint and loaded on resume, and, where it
decides them, the programs and mapper that predictions use. The session checkpoints, restores
and reports every stage the same way, never naming one (as Optuna's samplers get a study and a
trial through a small contract and never set attributes on the study)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from barapi.classifier import Scores
    from barapi.config import MethodConfig, RunConfig
    from barapi.data import Split
    from barapi.method.mapping import Mapper
    from barapi.method.optim import Optimizer
    from barapi.method.program import Program
    from barapi.run.queries import QueryEngine
    from barapi.run.records import State


class Session(Protocol):
    config: RunConfig
    split: Split
    program: Program
    engine: QueryEngine  # every query a stage asks goes through it: budget, cache, ledger
    optimizer: Optimizer  # what steps the program being trained (a stage may hand it another program's)

    def reserve_for_ending(self) -> int:
        """Queries a stage must leave unspent: the closing pass and the test set."""

    def dense(self, responses: Sequence[Scores], vocabulary: list[str]) -> np.ndarray: ...
    def loss(self, scores: np.ndarray, labels: np.ndarray) -> float: ...

    def training_answers(self, state: State, keep: int = 0, w: np.ndarray | None = None) -> np.ndarray:
        """Every training image's answers at W (the optimiser's unless given), paid or cached."""

    def test_accuracy_if_affordable(self, state: State) -> float | None: ...
    def programs_of(self, runs: Sequence[str], shape: tuple[int, ...]) -> np.ndarray:
        """The programs earlier runs on the store serve (--candidates-from)."""

    def checkpoint(self, state: State, test_accuracy: float | None) -> None: ...
    def emit(self, phase: str, state: State | None, test_accuracy: float | None, notice: str | None = None,
             counted: tuple[int, int] | None = None) -> None:
        """Progress to the caller; ``counted``: (done, of) where the phase counts something other than steps."""


class Served(Protocol):
    """What a stage serves: the programs each image is sent through, the free views read beside
    them (barapi.method.views), and the mapper over their answers and features."""

    @property
    def programs(self) -> np.ndarray: ...
    @property
    def free(self) -> tuple[str, ...]: ...
    def target_scores(self, dense: np.ndarray) -> np.ndarray: ...


class Stage(Protocol):
    def applies(self, method: MethodConfig) -> bool: ...

    def begin(self, session: Session) -> None:
        """As a run starts, before its first query: what the stage must fix before anything is paid."""

    def run(self, session: Session, state: State) -> bool:
        """Carry the stage out, checkpointing as it goes; False when the budget stopped it."""

    def state(self) -> dict[str, np.ndarray]:
        """Saved with every checkpoint (keys prefixed by the stage, as an optimiser's are)."""

    def load(self, name: str, method: MethodConfig, arrays: dict[str, np.ndarray], iteration: int) -> None:
        """From a resumed run's checkpoint, before its record changes: refuses what the stage
        cannot resume (``ConfigError``)."""

    def served(self) -> Served | None:
        """What predictions use, where the stage decides it (else the one program and its mapping)."""

    def figures(self) -> dict:
        """What the run's result reports of the stage (RunResult fields)."""


class Serving(NamedTuple):
    """What a prediction sends and reads: the programs, the mapper, the free views' names."""

    programs: list[np.ndarray]
    mapper: Mapper
    free: tuple[str, ...]


def served_by(stages: Sequence[Stage]) -> Served | None:
    return next((served for stage in stages if (served := stage.served()) is not None), None)

