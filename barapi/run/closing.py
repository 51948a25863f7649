"""The closing pass that ends a one-program run: every training image answered at the final W,
and the mapping predictions use fitted on those answers alone (the linear readout, fitted during
training on answers from the last epoch's programs, would lag behind the W it serves); with
--keep-better-start, the starting program served instead where its answers cross-validate
significantly better (barapi.method.selection). Its state — which program was kept — is saved
with every checkpoint, as a stage's is."""

from __future__ import annotations

import numpy as np

from barapi.errors import BudgetExceeded
from barapi.method.program import starting_parameters
from barapi.method.selection import Selection
from barapi.run.records import State
from barapi.run.session import Session


class ClosingPass:
    def __init__(self) -> None:
        self.selection: Selection | None = None

    def run(self, session: Session, state: State) -> None:
        """Skipped if the budget no longer allows it (training leaves room for it, so only a
        lowered budget does that)."""
        session.emit("reading", state, None)
        try:
            with session.engine.ending():
                dense = session.training_answers(state, keep=len(session.split.y_test))
        except BudgetExceeded:
            return
        state.mapping.close(state.iteration, dense, session.split.y_train)
        self._keep_the_better_program(session, state, dense)
        session.checkpoint(state, test_accuracy=None)

    def _keep_the_better_program(self, session: Session, state: State, trained: np.ndarray) -> None:
        """The start's answers come from the cache; where they are not there (a mapping that
        never read them), the trained program stays, unpaid for."""
        method, split = session.config.method, session.split
        if not method.keep_better_start or state.iteration == 0:
            return
        w0 = starting_parameters(method, session.config.seed)
        answers = session.engine.cached(session.program.encode_batch(w0, split.x_train))
        if answers is None:
            return
        at_start = session.dense(answers, state.vocabulary)
        self.selection = Selection.between(state.iteration, state.mapping, split.y_train, w0, at_start, trained)
        if self.selection.kept_start is not None:
            state.mapping.close(state.iteration, at_start, split.y_train)

    def served(self, w: np.ndarray, iteration: int) -> np.ndarray:
        """The program predictions use: the trained W, or the start the closing pass kept."""
        return w if self.selection is None else self.selection.served(w, iteration)

    def state(self) -> dict[str, np.ndarray]:
        return self.selection.state() if self.selection else {}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        self.selection = Selection.restored(arrays)

    def figures(self, iteration: int) -> dict | None:
        """Which program the pass kept at this iteration, and why (None before it ran)."""
        return self.selection.as_json() if self.selection and self.selection.iteration == iteration else None
