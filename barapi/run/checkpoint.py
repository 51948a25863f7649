"""A run's state between iterations and its one npz codec.

The archive is flat: the run's own fields, the optimiser's arrays (``w``, ``rule.*``,
``signal.*``), the mapping's (``assignment``, ``readout.*``, …) and the closing pass's choice
of program (``selection.*``). Each reader takes the keys it knows, so checkpoints written by
earlier versions, which held more or fewer keys, still load.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from barapi.config import RunConfig
from barapi.errors import ConfigError
from barapi.method.program import program_sha256
from barapi.method.selection import served_program
from barapi.store import RunRecord, Store

RUN_KEYS = ("iteration", "vocabulary", "recent_correct", "last_loss")


@dataclass
class RunState:
    iteration: int
    vocabulary: list[str]
    recent_correct: np.ndarray  # correctness at W of the latest training samples (≤ one epoch)
    last_loss: float | None
    arrays: dict[str, np.ndarray]  # the optimiser's and the mapping's

    @property
    def w(self) -> np.ndarray:
        """The program training reached."""
        return self.arrays["w"]

    @property
    def program(self) -> np.ndarray:
        """The program predictions use: W, or the start the closing pass kept instead."""
        return served_program(self.arrays, self.iteration)

    @property
    def views(self) -> np.ndarray:
        """(V, *W's shape): every program a prediction is sent through (a portfolio's, or the one)."""
        return self.arrays["portfolio.programs"] if "portfolio.programs" in self.arrays else self.program[None]

    @property
    def sha256(self) -> str:
        """What ``RunResult.program_sha256`` reports (one view's stack hashes as its W: the same bytes)."""
        return program_sha256(self.views)

    def encode(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays, **{
            "iteration": np.asarray(self.iteration),
            "vocabulary": np.asarray(self.vocabulary, dtype=str),
            "recent_correct": self.recent_correct,
            "last_loss": np.asarray(np.nan if self.last_loss is None else self.last_loss),
        })
        return buffer.getvalue()

    @classmethod
    def decode(cls, blob: bytes) -> RunState:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        last_loss = float(arrays["last_loss"])
        return cls(
            iteration=int(arrays["iteration"]),
            vocabulary=[str(v) for v in arrays["vocabulary"]],
            recent_correct=arrays["recent_correct"],
            last_loss=None if np.isnan(last_loss) else last_loss,
            arrays={k: v for k, v in arrays.items() if k not in RUN_KEYS},
        )


def load_state(store: Store, run: str) -> RunState | None:
    checkpoint = store.load_checkpoint(run)
    return None if checkpoint is None else RunState.decode(checkpoint.state)


def load_config(store: Store, run: str) -> RunConfig:
    """A stored run's configuration."""
    return config_of(store.get_run(run))


def config_of(record: RunRecord) -> RunConfig:
    return RunConfig.model_validate_json(record.config)


def require_state(store: Store, run: str) -> RunState:
    state = load_state(store, run)
    if state is None:
        raise ConfigError(f"run {run!r} has no checkpoint yet: train it first (`barapi resume {run}`)")
    return state


def programs_of(store: Store, runs: list[str] | tuple[str, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Every program the named runs serve (--candidates-from), as this run's W must be shaped."""
    programs = []
    for name in runs:
        views = require_state(store, name).views
        if views.shape[1:] != shape:
            raise ConfigError(f"run {name!r}'s programs have W of shape {views.shape[1:]}, this run's {shape}: give both the same "
                              "--program-resolution, --program-basis and --visible-size")
        programs += list(views)
    return np.stack(programs)
