"""The stages of a run's training, each one object of one shape: ``applies(method)`` says whether
the method has it, ``run(session, state)`` carries it out (checkpointing as it goes) and answers
False when the budget stopped it. The trainer runs the stages that apply, in order, and never
knows which they are; the closing pass and the evaluation that end every run are the session's.

- ``CandidateSearch``: a portfolio's candidates answered on the training images, V chosen and
  one readout over them (barapi.method.portfolio);
- ``ZerothOrderSteps``: Algorithm 1's iterations, the optimiser asked and told (barapi.method.optim).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from barapi.config import MethodConfig
from barapi.errors import BudgetExceeded
from barapi.method.portfolio import PortfolioSearch
from barapi.method.program import starting_parameters
from barapi.method.streams import Stream, generator
from barapi.run.records import State

if TYPE_CHECKING:
    from barapi.run.trainer import Trainer


class Stage(Protocol):
    def applies(self, method: MethodConfig) -> bool: ...
    def run(self, run: Trainer, state: State) -> bool: ...


class CandidateSearch:
    def applies(self, method: MethodConfig) -> bool:
        return method.is_portfolio

    def run(self, run: Trainer, state: State) -> bool:
        """A portfolio's stage: every candidate's answers on the training images (paid once, then
        cached; the start's were the label mapping's), then V chosen and one readout over them.
        False when the budget stopped the candidates early: the views are chosen among those paid.
        A resumed run whose portfolio was chosen for this many candidates and views keeps it."""
        method = run.config.method
        if not method.is_portfolio or (run.portfolio is not None and state.candidates_paid == method.candidates and run.portfolio.views == method.views):
            return True
        search = PortfolioSearch(method.views, run.split.n_classes, method.candidate_family, run.earlier)
        start = starting_parameters(method, run.config.seed)
        programs, complete = [], True
        for k in range(method.candidates):
            w = search.candidate(k, start, run.config.seed)
            images = run.program.encode_batch(w, run.split.x_train)
            # Answers this run already has (the start's, or before a resume) are read, not asked again.
            responses = run.engine.cached(images) if k < max(state.candidates_paid, 1) else None
            try:
                responses = responses or run.engine.score(images, all_or_nothing=True, keep=run.reserve_for_ending())
            except BudgetExceeded:
                complete = False
                break
            search.tell(run.dense(responses, state.vocabulary))
            programs.append(w)
            if k >= state.candidates_paid:
                state.candidates_paid = k + 1
                run.checkpoint(state, None)
            run.emit("candidates", state, None)
        run.portfolio = search.choose(run.split.y_train, programs)
        state.candidates_paid = len(programs)
        run.checkpoint(state, None)
        return complete


class ZerothOrderSteps:
    def applies(self, method: MethodConfig) -> bool:
        return method.iterations > 0

    def run(self, run: Trainer, state: State) -> bool:
        while state.iteration < run.config.method.iterations:
            if not self.step(run, state):
                return False
        return True

    def step(self, run: Trainer, state: State) -> bool:
        """One iteration of Algorithm 1; False when its queries no longer fit the budget."""
        method = run.config.method
        rng = generator(run.config.seed, Stream.STEP, state.iteration)
        batch = rng.choice(len(run.split.y_train), size=method.batch_size, replace=False)
        candidates = run.optimizer.ask(rng)
        targets = run.split.x_train[batch]
        images = [image for w in candidates for image in run.program.encode_batch(w, targets)]
        try:
            responses = run.engine.score(images, all_or_nothing=True, keep=run.reserve_for_ending())
        except BudgetExceeded:
            return False
        mapper = state.mapping.training_mapper()
        labels = run.split.y_train[batch]
        losses = []
        for c in range(len(candidates)):
            dense = run.dense(responses[c * len(batch) : (c + 1) * len(batch)], state.vocabulary)
            scores = mapper.target_scores(dense)
            losses.append(run.loss(scores, labels))
            if c == 0:
                correct = (np.argmax(scores, axis=1) == labels).astype(float)
                at_w = dense
        run.optimizer.tell(losses)
        state.iteration += 1
        state.last_loss = losses[0]
        state.recent_correct = np.concatenate([state.recent_correct, correct])[-len(run.split.y_train) :]
        state.mapping.observe(state.iteration, at_w, labels)
        test_accuracy = None
        if method.eval_every and state.iteration % method.eval_every == 0 and state.iteration < method.iterations:
            test_accuracy = run.test_accuracy_if_affordable(state)
        run.checkpoint(state, test_accuracy)
        run.emit("training", state, test_accuracy)
        return True


STAGES: tuple[Stage, ...] = (CandidateSearch(), ZerothOrderSteps())


def stages_for(method: MethodConfig) -> list[Stage]:
    return [stage for stage in STAGES if stage.applies(method)]
