"""The session contract from the strategies' and stages' side: the trainer drives the optimiser,
mapping maker and stages it is given without naming any, and checkpoints, restores and reports a
stage it has never heard of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fakes import ProjectionModel
from test_trainer import config

from barapi.config import MethodConfig
from barapi.store import Store
from barapi.run.trainer import Trainer


def test_the_loop_drives_the_strategy_objects_it_is_given(tmp_path) -> None:  # noqa: ANN001
    """The trainer drives whatever optimiser, mapping maker and stages it receives, never asking
    which they are: a recording optimiser is asked and told every step, the maker makes the mapping."""
    from barapi.run.strategies import new_mapping
    from barapi.run.strategies import optimizer_for
    from barapi.run.stages import ZerothOrderSteps

    run = config(iterations=3)
    inner = optimizer_for(run.method)
    calls: list[str] = []

    class Recording:
        def __getattr__(self, name: str):  # noqa: ANN204 - everything else is the inner optimiser's
            return getattr(inner, name)

        def __setattr__(self, name: str, value: object) -> None:
            setattr(inner, name, value)

        def ask(self, rng):  # noqa: ANN001, ANN202
            calls.append("ask")
            return inner.ask(rng)

        def tell(self, losses):  # noqa: ANN001, ANN202
            calls.append("tell")
            return inner.tell(losses)

    made: list[int] = []

    def mappings(method, n_classes, vocabulary):  # noqa: ANN001, ANN202
        made.append(vocabulary)
        return new_mapping(method, n_classes, vocabulary)

    given = Trainer(run, ProjectionModel(), Store(tmp_path / "given"), optimizer=Recording(), mappings=mappings, stages=[ZerothOrderSteps()]).run()
    default = Trainer(run, ProjectionModel(), Store(tmp_path / "default")).run()
    assert calls == ["ask", "tell"] * 3 and len(made) == 1
    assert (given.program_sha256, given.queries_paid) == (default.program_sha256, default.queries_paid)  # the same strategies, driven alike
    skipped = Trainer(config(name="none", iterations=3), ProjectionModel(), Store(tmp_path / "none"), stages=[]).run()
    assert skipped.iterations == 0  # no stage: the start, the closing pass and the evaluation only


class TopScoreStage:
    """A stage the trainer has never heard of: after the method's stages it reads the training
    images at the trained W (what the closing pass then finds cached) and keeps their mean top
    score, and how often it ran, in its own state."""

    def __init__(self) -> None:
        self.runs, self.top = 0, None

    def applies(self, method: MethodConfig) -> bool:
        return True

    def begin(self, session) -> None:
        return None

    def run(self, session, state) -> bool:
        answers = session.training_answers(state, keep=session.reserve_for_ending())
        self.runs, self.top = self.runs + 1, float(answers.max(axis=1).mean())
        session.checkpoint(state, None)
        return True

    def state(self) -> dict:
        return {"top-score.runs": np.asarray(self.runs)} | ({"top-score.mean": np.asarray(self.top)} if self.top is not None else {})

    def load(self, name: str, method: MethodConfig, arrays: dict, iteration: int) -> None:
        self.runs = int(arrays.get("top-score.runs", 0))
        self.top = float(arrays["top-score.mean"]) if "top-score.mean" in arrays else None

    def served(self):
        return None

    def figures(self) -> dict:
        return {}


def test_a_stage_is_added_without_touching_the_trainer(tmp_path: Path) -> None:
    from barapi.run.checkpoint import load_state
    from barapi.run.stages import stages_for

    store, settings = Store(tmp_path), config(mapping="linear", iterations=2)
    plain = Trainer(settings, ProjectionModel(), Store(tmp_path / "plain")).run()
    added = TopScoreStage()
    result = Trainer(settings, ProjectionModel(), store, stages=[*stages_for(settings.method), added]).run()
    # It ran after the steps, on the program they trained, paying only what the closing pass would have.
    assert added.runs == 1 and result.program_sha256 == plain.program_sha256 and result.queries_paid == plain.queries_paid
    saved = load_state(store, "run").arrays
    assert int(saved["top-score.runs"]) == 1 and float(saved["top-score.mean"]) == added.top  # checkpointed by the trainer
    longer = settings.model_copy(update={"method": settings.method.model_copy(update={"iterations": 3})})
    resumed = TopScoreStage()
    Trainer(longer, ProjectionModel(), store, stages=[*stages_for(longer.method), resumed]).run()
    assert resumed.runs == 2  # restored by the trainer (1), then run again at the new end
