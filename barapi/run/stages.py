"""The stages of a run's training, each one object of one shape (barapi.run.session.Stage):
``applies(method)`` says whether the method has it, ``run(session, state)`` carries it out
(checkpointing as it goes) and answers False when the budget stopped it; each keeps its own state
(``state()`` / ``load()``) and says what it serves and reports. The session runs the stages that
apply, in order, and never knows which they are; the closing pass and the evaluation that end
every run are the session's.

- ``PortfolioStage``: a portfolio's candidates answered on the training images, V chosen and one
  readout over them (barapi.method.portfolio), then its views refined by zeroth-order steps, one
  view at a time;
- ``ZerothOrderSteps``: Algorithm 1's iterations, the optimiser asked and told (barapi.method.optim).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from barapi.config import MethodConfig
from barapi.errors import BudgetExceeded, ConfigError
from barapi.method.free import read_free
from barapi.method.gain import ApiGain, nested_gain
from barapi.method.joint import joined
from barapi.method.portfolio import Portfolio, PortfolioSearch, refinement_blocks, view_of
from barapi.method.program import starting_parameters
from barapi.method.streams import Stream, generator
from barapi.method.views import free_features
from barapi.money import cost_usd
from barapi.run.records import State
from barapi.run.session import Served, Session, Stage
from barapi.run.strategies import optimizer_for


class PortfolioStage:
    """Many programs, one readout: the candidates paid for, V chosen, then (with --iterations) the
    views refined. Its state: the portfolio chosen, the candidates paid, and the earlier runs'
    programs it tried first (--candidates-from, copied in as the run starts)."""

    def __init__(self) -> None:
        self.portfolio: Portfolio | None = None
        self.paid = 0
        self.earlier: np.ndarray | None = None
        self.gain: ApiGain | None = None  # what the views add to the training images' pixels (barapi.method.gain)

    def applies(self, method: MethodConfig) -> bool:
        return method.is_portfolio

    def begin(self, session: Session) -> None:
        """--candidates-from: the earlier runs' programs, copied in before the first query (a
        resume tries the same ones, whatever became of those runs since)."""
        if session.config.candidates_from:
            shape = session.config.method.geometry.parameter_shape
            self.earlier = session.programs_of(session.config.candidates_from, shape)

    def run(self, session: Session, state: State) -> bool:
        method = session.config.method
        if not self.search(session, state):
            return False
        return ViewRefinement().run(self, session, state) if method.iterations > 0 else True

    def search(self, session: Session, state: State) -> bool:
        """Every candidate's answers on the training images (paid once, then cached; the start's
        were the label mapping's), then V chosen and one readout over them. False when the budget
        stopped the candidates early: the views are chosen among those paid. A resumed run whose
        portfolio was chosen for this many candidates and views keeps it."""
        method, seed = session.config.method, session.config.seed
        if self.portfolio is not None and self.paid == method.candidates and self.portfolio.views == method.views:
            return True
        start = starting_parameters(method, seed)
        search = PortfolioSearch(method.views, session.split.n_classes, method.candidate_family, self.earlier)
        programs, complete = [], True
        for k in range(method.candidates):
            w = search.candidate(k, start, seed)
            images = session.program.encode_batch(w, session.split.x_train)
            # Answers this run already has (the start's, or before a resume) are read, not asked again.
            responses = session.engine.cached(images) if k < max(self.paid, 1) else None
            try:
                responses = responses or session.engine.score(images, all_or_nothing=True, keep=session.reserve_for_ending())
            except BudgetExceeded:
                complete = False
                break
            search.tell(session.dense(responses, state.vocabulary))
            programs.append(w)
            if k >= self.paid:
                self.paid = k + 1
                session.checkpoint(state, None)
            session.emit("candidates", state, None, counted=(self.paid, method.candidates))
        self.portfolio = search.choose(session.split.y_train, programs)
        self.paid = len(programs)
        self.join_free_views(session, search.answers)
        session.checkpoint(state, None)
        return complete

    def join_free_views(self, session: Session, answers: list[np.ndarray]) -> None:
        """What the paid views add to the free ones, judged on folds their choice never saw
        (barapi.method.gain); with free views, one readout over both, the paid views kept only
        where they add beyond noise (or where too few images say either way)."""
        split, method, portfolio = session.split, session.config.method, self.portfolio
        assert portfolio is not None
        free = read_free(method.free_views, split.x_train)
        self.gain, evidence = nested_gain(answers, free.blocks, split.y_train, split.n_classes, method.views,
                                          cost_usd(1000 * method.views, session.config.price_per_1k), free.yardstick)
        if free.specs:
            served, paid = [answers[c] for c in portfolio.chosen], self.gain is None or self.gain.beyond_noise
            self.portfolio = joined(portfolio, free.specs, free.features, served, split.y_train, split.n_classes, paid, evidence)

    def state(self) -> dict[str, np.ndarray]:
        arrays = (self.portfolio.state() if self.portfolio else {}) | {"portfolio.paid": np.asarray(self.paid)}
        arrays |= {"portfolio.gain": self.gain.state()} if self.gain is not None else {}
        return arrays | ({"portfolio.earlier": self.earlier} if self.earlier is not None else {})

    def load(self, name: str, method: MethodConfig, arrays: dict[str, np.ndarray], iteration: int) -> None:
        """Refuses what would undo refined views: other candidates or views would choose views
        afresh, other steps would lay their blocks out anew."""
        self.portfolio = Portfolio.restored(arrays)
        self.paid = int(arrays.get("portfolio.paid", 0))
        self.earlier = arrays.get("portfolio.earlier")
        self.gain = ApiGain.restored(arrays.get("portfolio.gain"))
        if self.portfolio is None or not iteration:
            return
        if self.paid != method.candidates or self.portfolio.views != method.views:
            raise ConfigError(f"run {name!r}'s views have been refined by {iteration} steps; other --candidates or --views would choose "
                              f"views afresh: start a new run with --candidates-from {name}")
        if self.portfolio.refinement_steps != method.iterations:
            raise ConfigError(f"run {name!r}'s views were refined in blocks laid out for --iterations {self.portfolio.refinement_steps}: "
                              f"to refine further, start a new run with --candidates-from {name} --iterations {method.iterations}")

    def served(self) -> Served | None:
        return self.portfolio

    def figures(self) -> dict:
        if self.portfolio is None:
            return {"candidates_paid": self.paid}
        return {"views": self.portfolio.views, "candidates_paid": self.paid, "validation_loss": round(self.portfolio.validation_loss, 6),
                "api_gain": self.gain.as_json() if self.gain is not None else None}


class ViewRefinement:
    def run(self, chosen: PortfolioStage, run: Session, state: State) -> bool:
        """The chosen views refined by the run's zeroth-order steps, one view's block of steps
        after another (barapi.method.portfolio.refinement_blocks): each step's loss is the
        readout's on its batch, the other views' answers read from every training image's at
        their current programs; when a view's block ends, its training images are answered at
        its new program (paid once) and the readout is refitted on all views. A block the budget
        stops leaves its view as it was (the steps paid stay in the checkpoint: a resume with a
        raised budget goes on as if never stopped)."""
        method, portfolio = run.config.method, chosen.portfolio
        assert portfolio is not None
        if state.iteration == 0:
            chosen.portfolio = portfolio = replace(portfolio, refinement_steps=method.iterations)
        if not portfolio.views:  # the free views are served alone: no paid view to refine
            return True
        blocks = refinement_blocks(method.iterations, portfolio.views)
        answers = [run.training_answers(state, w=w) for w in portfolio.programs]  # paid when chosen or refined: cached
        free = free_features(portfolio.free, run.split.x_train)
        while True:
            if not self.close_view(chosen, run, state, blocks, answers, free):
                return False
            if state.iteration == method.iterations:
                return True
            view = view_of(blocks, state.iteration)
            if state.iteration == blocks[view]:
                run.optimizer = optimizer_for(method, chosen.portfolio.programs[view])

            def scores(dense: np.ndarray, batch: np.ndarray, view: int = view) -> np.ndarray:
                row = [dense if u == view else a[batch] for u, a in enumerate(answers)] + [x[batch] for x in free]
                return chosen.portfolio.target_scores(np.hstack(row))

            if zeroth_order_step(run, state, scores) is None:
                return False
            measured(run, state)

    def close_view(self, chosen: PortfolioStage, run: Session, state: State, blocks: np.ndarray, answers: list[np.ndarray],
                   free: list[np.ndarray]) -> bool:
        """When a view's block has just ended and its program moved: its training answers at the
        new program, and the readout refitted on every view's. False if the budget stopped it."""
        if state.iteration == 0:
            return True
        view = view_of(blocks, state.iteration - 1)
        if blocks[view + 1] != state.iteration or np.array_equal(chosen.portfolio.programs[view], run.optimizer.w):
            return True
        run.emit("reading", state, None)
        try:
            answers[view] = run.training_answers(state, keep=run.config.method.views * len(run.split.y_test))
        except BudgetExceeded:
            return False
        split, portfolio = run.split, chosen.portfolio.with_view(view, run.optimizer.w, answers, run.split.y_train, run.split.n_classes)
        chosen.portfolio = joined(portfolio, portfolio.free, free, answers, split.y_train, split.n_classes, paid=True) if free else portfolio
        run.checkpoint(state, None)
        return True


class ZerothOrderSteps:
    """Its state is the optimiser's, which the session keeps (it steps the one program)."""

    def applies(self, method: MethodConfig) -> bool:
        return method.iterations > 0 and not method.is_portfolio

    def run(self, run: Session, state: State) -> bool:
        while state.iteration < run.config.method.iterations:
            if not self.step(run, state):
                return False
        return True

    def step(self, run: Session, state: State) -> bool:
        """One iteration of Algorithm 1; False when its queries no longer fit the budget."""
        mapper = state.mapping.training_mapper()
        stepped = zeroth_order_step(run, state, lambda dense, _: mapper.target_scores(dense))
        if stepped is None:
            return False
        batch, at_w = stepped
        state.mapping.observe(state.iteration, at_w, run.split.y_train[batch])
        measured(run, state)
        return True

    def begin(self, session: Session) -> None:
        return None

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load(self, name: str, method: MethodConfig, arrays: dict[str, np.ndarray], iteration: int) -> None:
        return None

    def served(self) -> Served | None:
        return None

    def figures(self) -> dict:
        return {}


def zeroth_order_step(run: Session, state: State, scores: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """One step of the run's optimiser on a batch of training images: the points it asks for
    answered (what the ending needs kept aside), their losses through ``scores`` (answers at a
    point, the batch's indices → target scores) told, the state advanced. The batch and the
    answers at W, or None when its queries no longer fit the budget."""
    method = run.config.method
    rng = generator(run.config.seed, Stream.STEP, state.iteration)
    batch = rng.choice(len(run.split.y_train), size=method.batch_size, replace=False)
    candidates = run.optimizer.ask(rng)
    targets = run.split.x_train[batch]
    images = [image for w in candidates for image in run.program.encode_batch(w, targets)]
    try:
        responses = run.engine.score(images, all_or_nothing=True, keep=run.reserve_for_ending())
    except BudgetExceeded:
        return None
    labels = run.split.y_train[batch]
    losses = []
    for c in range(len(candidates)):
        dense = run.dense(responses[c * len(batch) : (c + 1) * len(batch)], state.vocabulary)
        target_scores = scores(dense, batch)
        losses.append(run.loss(target_scores, labels))
        if c == 0:
            correct = (np.argmax(target_scores, axis=1) == labels).astype(float)
            at_w = dense
    run.optimizer.tell(losses)
    state.iteration += 1
    state.last_loss = losses[0]
    state.recent_correct = np.concatenate([state.recent_correct, correct])[-len(run.split.y_train) :]
    return batch, at_w


def measured(run: Session, state: State) -> None:
    """After a step: the test set when --eval-every asks for it, the checkpoint, the progress."""
    method = run.config.method
    test_accuracy = None
    if method.eval_every and state.iteration % method.eval_every == 0 and state.iteration < method.iterations:
        test_accuracy = run.test_accuracy_if_affordable(state)
    run.checkpoint(state, test_accuracy)
    run.emit("training", state, test_accuracy)


# Each run gets its own instances: a stage keeps state.
STAGES: tuple[Callable[[], Stage], ...] = (PortfolioStage, ZerothOrderSteps)


def stages_for(method: MethodConfig) -> list[Stage]:
    return [stage for stage in (make() for make in STAGES) if stage.applies(method)]
