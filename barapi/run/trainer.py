"""A run's session around its training stages: the lease, the run record, the budget and the
queries, the start (label mapping), the stages of the method (barapi.run.stages, driven without
knowing which), the closing pass, evaluation, and a checkpoint after every step.

Reproducibility: every random draw comes from a generator of its own (``barapi.method.streams``), so a
run resumed from its checkpoint draws exactly what the uninterrupted run would have drawn, and
renders exactly the same bytes — whose responses are then free from the cache.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from barapi.method import labels as labelling
from barapi.run.checkpoint import RunState, load_state, require_state
from barapi.classifier import Classifier, Scores, SelectableLabels, canvas_encoding
from barapi.config import MethodConfig, RunConfig
from barapi.data import Split, run_split
from barapi.errors import BudgetExceeded, ConfigError
from barapi.method.losses import LOSSES, accuracy, class_weights
from barapi.method.mapping import MAPPINGS, Mapper, Mapping
from barapi.money import Budget
from barapi.method.optim import Optimizer
from barapi.method.signal import signal_figures
from barapi.method.portfolio import Portfolio
from barapi.method.program import Program, program_sha256, starting_parameters
from barapi.run.queries import QueryEngine
from barapi.run.records import Progress, RunResult, State
from barapi.run.stages import Stage, check_resumable, stages_for
from barapi.run.strategies import closing_queries, new_mapping, optimizer_for, restored_mapping
from barapi.method.selection import Selection
from barapi.store import Lease, MetricRow, RunRecord, Store
from barapi.method.streams import Stream, generator


# (method, classes, vocabulary size) → a fresh label mapping and what to tell the user about it.
MappingMaker = Callable[[MethodConfig, int, int], tuple[Mapping, str | None]]


class Trainer:
    def __init__(
        self, config: RunConfig, classifier: Classifier, store: Store,
        on_progress: Callable[[Progress], None] | None = None, *, record_status: bool = True, split: Split | None = None,
        optimizer: Optimizer | None = None, mappings: MappingMaker = new_mapping, stages: Sequence[Stage] | None = None,
    ) -> None:
        """``record_status=False`` opens an existing run read-only (eval): it is not marked
        running and its in-flight reservations are left alone. ``split``: the run's data, if the
        caller already loaded it (see ``run_split``). The strategies the loop drives come in as
        objects: ``optimizer`` (default: the method's, from the registry), ``mappings`` (makes the
        label mapping once the vocabulary is known) and ``stages`` (default: the method's)."""
        self.config = config
        self.classifier = classifier
        self.store = store
        self.on_progress = on_progress or (lambda _: None)
        method = config.method
        self.program = Program(method.geometry, canvas_encoding(classifier))
        self.split = split or run_split(config)
        if method.iterations and method.batch_size > len(self.split.y_train):
            raise ConfigError(f"--batch-size {method.batch_size} exceeds the {len(self.split.y_train)} training images")
        self.weights = class_weights(self.split.y_train, self.split.n_classes)
        self.lease: Lease | None = None
        self._loaded: RunState | None = None  # the checkpoint read under the lease, before the record changes
        if record_status:
            self.lease = Lease(store, config.name)  # refuses while another live process drives the run
            try:
                self._loaded = load_state(store, config.name)
                check_resumable(config.name, method, self._loaded)
            except BaseException:  # a refusal, or a checkpoint that cannot be read: nothing holds the run
                self.lease.release()
                raise
            self.record = self._open_record()
            store.mark_lost(config.name)  # this process owns the run: what was in flight died
        else:
            self.record = store.get_run(config.name)
        paid, spent = store.spent(config.name)
        self.budget = Budget(max_usd=config.budget_usd, max_queries=config.max_queries, per_1k=config.price_per_1k, spent_usd=spent, spent_queries=paid)
        self.engine = QueryEngine(classifier, store, self.budget, config.name, config.pool)
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.optimizer: Optimizer = optimizer or optimizer_for(method)
        self.mappings = mappings
        self.stages = list(stages) if stages is not None else stages_for(method)
        self.selection: Selection | None = None
        self.portfolio: Portfolio | None = None
        self.earlier: np.ndarray | None = None  # --candidates-from: the earlier runs' programs, as this run started

    # -- public ------------------------------------------------------------------------------
    def run(self) -> RunResult:
        try:
            return self._run()
        finally:
            self._let_go()

    def _run(self) -> RunResult:
        saved = self.restore()
        self.engine.hold_for_ending(sum(self._ending_queries(started=saved is not None)))
        state = saved or self.start()
        # The method's stages in order (barapi.run.stages); one stopped by the budget ends training.
        done = all(stage.run(self, state) for stage in self.stages)
        status = "completed" if done else "budget_exhausted"
        self._read_training_set(state)
        test_accuracy = self._final_evaluation()
        self.checkpoint(state, test_accuracy)  # the same state; its metrics row gains the test accuracy
        result = self._result(state, status, test_accuracy)
        self.record.status = status
        self.record.result = json.dumps(result.as_json())
        self.store.save_run(self.record)
        self.emit("done", state, test_accuracy)
        return result

    def mark(self, status: str) -> None:
        """Record why the run stopped early (interrupted, failed, budget_exhausted)."""
        self.record.status = status
        self.store.save_run(self.record)
        self._let_go()

    def _let_go(self) -> None:
        self.engine.let_go()
        if self.lease is not None:
            self.lease.release()

    def evaluate(self, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(true labels, predicted labels) of the run's current program on its test split, or on
        the images given; every query goes through the budget, cache and ledger, and each answer
        is reported to ``on_progress`` (phase "evaluating": images answered of the set)."""
        state = self.restore()
        if state is None:
            raise ConfigError(f"run {self.config.name!r} has no checkpoint yet: train it first")
        images = self.split.x_test if images is None else images
        truth = self.split.y_test if labels is None else labels
        answered = [0]

        def tick(count: int) -> None:  # adapters answer from several threads
            with self._lock:
                answered[0] += count
                self.on_progress(Progress(
                    "evaluating", min(answered[0], len(truth)), len(truth), None, None, None, self.budget.spent_queries,
                    self.engine.queries_cached, self.budget.spent_usd, time.monotonic() - self.started,
                ))

        self.engine.meter.on_answered = tick
        closing = closing_queries(self.config.method, len(self.split.y_train)) if self._lags(state) else 0
        try:
            with self.engine.holding(self.config.method.views * len(images) + closing):
                scores = self.predict_scores(*self._serving(state, keep=len(images)), images, state.vocabulary)
        finally:
            self.engine.meter.on_answered = None
        return truth, np.argmax(scores, axis=1)

    def predict_scores(self, programs: list[np.ndarray], mapper: Mapper, images: np.ndarray, vocabulary: list[str]) -> np.ndarray:
        """Target scores of each image through every served program: all views' queries go out
        together (the adapters batch or send them concurrently), and the mapper reads the views'
        answers side by side."""
        encoded = [image for w in programs for image in self.program.encode_batch(w, images)]
        dense = self.dense(self.engine.score(encoded, all_or_nothing=True), vocabulary)
        return mapper.target_scores(np.hstack(np.split(dense, len(programs))))

    # -- phases ------------------------------------------------------------------------------
    def _open_record(self) -> RunRecord:
        config_json = self.config.model_dump_json()
        if self.store.has_run(self.config.name):
            record = self.store.get_run(self.config.name)
            record.config = config_json  # resume may raise the budget
        else:
            now = time.time()
            record = RunRecord(name=self.config.name, created_at=now, updated_at=now, status="running", config=config_json)
        record.status = "running"
        self.store.save_run(record)
        return record

    def start(self) -> State:
        """Random W0, the provider's vocabulary, then the label mapping from W0's answers on
        the training set. A mapping that cannot fit the vocabulary is refused before any paid
        query where the provider publishes its labels, else after the first answer (which the
        mapping needs anyway)."""
        method = self.config.method
        w0 = starting_parameters(method, self.config.seed)
        self.optimizer.w = w0
        self.earlier = self._earlier_programs(w0.shape) if self.config.candidates_from else None
        images = self.program.encode_batch(w0, self.split.x_train)
        self._check_budget_covers_the_essentials()
        with self.engine.ending():
            vocabulary, published, complete = self._vocabulary(images[0])
        mapping = self._new_mapping(vocabulary) if complete else None
        responses: list[Scores] = []
        if mapping is None or mapping.needs_start_answers or not published:
            self.emit("mapping", None, None)
            with self.engine.ending():
                responses = self.engine.score(images)
        if mapping is None:
            # Truncated answers (top-k) of an unpublished vocabulary: every label shown so far.
            vocabulary = sorted({label for r in responses for label in r})
            mapping = self._new_mapping(vocabulary)
        dense = self.dense(responses, vocabulary) if mapping.needs_start_answers else None
        mapping.start(dense, self.split.y_train, len(vocabulary), generator(self.config.seed, Stream.MAPPING))
        state = State(0, vocabulary, mapping, np.zeros(0), None)
        self._focus(state)
        self.checkpoint(state, test_accuracy=None)
        return state

    def _ending_queries(self, started: bool) -> tuple[int, int, int]:
        """What a run must spend to end measured: the label mapping (unless it has started), the
        closing pass and the test set through every view."""
        n_train, method = len(self.split.y_train), self.config.method
        start = 0 if started else MAPPINGS[method.mapping].start_queries(n_train, bool(self.classifier.labels()))
        return start, closing_queries(method, n_train), method.views * len(self.split.y_test)

    def _check_budget_covers_the_essentials(self) -> None:
        """Refuse, before the first query, a budget that cannot pay for the label mapping, the
        closing pass and the test set: a run that could not measure its program is money lost.
        (On a pool, the run's hold has already kept them aside.)"""
        start, closing, testing = self._ending_queries(started=False)
        needed = start + closing + testing
        with self.engine.ending():
            affordable = self.engine.fits(needed)
        if not affordable:
            raise ConfigError(
                f"the budget ({self.engine.describe()}) cannot cover the label mapping ({start}), the closing pass ({closing}) "
                f"and the test set ({testing}): {needed} queries before any training; raise --budget / --max-queries "
                "or lower --train-per-class / --test-size" + (" / --views" if self.config.method.views > 1 else "")
            )

    def _earlier_programs(self, shape: tuple[int, ...]) -> np.ndarray:
        """--candidates-from: every program the earlier runs serve, copied into this run (a resume
        tries the same ones whatever became of those runs since)."""
        programs = []
        for name in self.config.candidates_from:
            views = require_state(self.store, name).views
            if views.shape[1:] != shape:
                raise ConfigError(f"run {name!r}'s programs have W of shape {views.shape[1:]}, this run's {shape}: give both the same "
                                  "--program-resolution, --program-basis and --visible-size")
            programs += list(views)
        return np.stack(programs)

    def _vocabulary(self, first_image: bytes) -> tuple[list[str], bool, bool]:
        """The provider's labels, whether it published them, and whether they are all of them:
        published, or read from the answer to the first image when it holds the whole
        distribution (every tag, as Azure answers). That image is the label mapping's first
        (a provider that does not publish its labels is always asked the whole training set):
        it is paid once, then cached."""
        published = self.classifier.labels()
        if published:
            return list(published), True, True
        answer = self.engine.score([first_image])[0]
        return sorted(answer), False, abs(sum(answer.values()) - 1.0) <= labelling.SCORE_TOLERANCE * len(answer)

    def _new_mapping(self, vocabulary: list[str]) -> Mapping:
        mapping, notice = self.mappings(self.config.method, self.split.n_classes, len(vocabulary))
        if notice:
            self.emit("mapping", None, None, notice=notice)
        return mapping

    def _focus(self, state: State) -> None:
        """Providers that can be asked for exactly the labels the scores depend on are, from
        here on: top-k truncation then never hides one."""
        focus = state.mapping.focus()
        if isinstance(self.classifier, SelectableLabels) and focus is not None:
            self.classifier.restrict_to(sorted({state.vocabulary[i] for i in focus}))

    def reserve_for_ending(self) -> int:
        """What training leaves in the budget: the mapping's closing pass and the test set (through
        every view), so that a run stopped by its budget still ends measured."""
        return closing_queries(self.config.method, len(self.split.y_train)) + self.config.method.views * len(self.split.y_test)

    def _read_training_set(self, state: State) -> None:
        """The closing pass: every training image answered at the final W, and the mapping
        predictions use fitted on those answers alone. For the linear readout, fitted on the
        rolling buffer instead, whose answers come from the last epoch's programs, the readout
        would lag behind the W it serves. Skipped if the budget no longer allows it (training
        leaves room for it, so only a lowered budget does that)."""
        if not self._lags(state):
            return
        self.emit("reading", state, None)
        try:
            with self.engine.ending():
                dense = self.training_answers(state, keep=len(self.split.y_test))
        except BudgetExceeded:
            return
        state.mapping.close(state.iteration, dense, self.split.y_train)
        self._keep_the_better_program(state, dense)
        self.checkpoint(state, test_accuracy=None)

    def _keep_the_better_program(self, state: State, trained: np.ndarray) -> None:
        """barapi.method.selection: the start's answers come from the cache; where they are not there
        (a mapping that never read them), the trained program stays, unpaid for."""
        method = self.config.method
        if not method.keep_better_start or state.iteration == 0:
            return
        w0 = starting_parameters(method, self.config.seed)
        answers = self.engine.cached(self.program.encode_batch(w0, self.split.x_train))
        if answers is None:
            return
        labels, at_start = self.split.y_train, self.dense(answers, state.vocabulary)
        self.selection = Selection.between(state.iteration, state.mapping, labels, w0, at_start, trained)
        if self.selection.kept_start is not None:
            state.mapping.close(state.iteration, at_start, labels)

    def _program(self, state: State) -> np.ndarray:
        """The program predictions use: the trained W, or the start the closing pass kept."""
        w = self.optimizer.w
        return w if self.selection is None else self.selection.served(w, state.iteration)

    def _serving(self, state: State, keep: int) -> tuple[list[np.ndarray], Mapper]:
        """The programs predictions send each image through, and the mapper over their answers."""
        if self.portfolio is not None:
            return list(self.portfolio.programs), self.portfolio
        return [self._program(state)], self._mapper_at_w(state, keep)

    def _served_programs(self, state: State) -> np.ndarray:
        return self.portfolio.programs if self.portfolio is not None else self._program(state)

    def _lags(self, state: State) -> bool:
        """Whether the one program's predictions need a closing pass first (a portfolio's views
        are read as their refinement goes: barapi.run.stages.ViewRefinement)."""
        return self.portfolio is None and state.mapping.lags(state.iteration)

    def training_answers(self, state: State, keep: int = 0, w: np.ndarray | None = None) -> np.ndarray:
        """The training images' answers at W (the current one unless given), dense over the
        vocabulary (paid, or cached)."""
        w = self.optimizer.w if w is None else w
        responses = self.engine.score(self.program.encode_batch(w, self.split.x_train), all_or_nothing=True, keep=keep)
        return self.dense(responses, state.vocabulary)

    def _final_evaluation(self) -> float | None:
        self.emit("evaluating", self._current, None)
        with self.engine.ending():
            return self.test_accuracy_if_affordable(self._current)

    def test_accuracy_if_affordable(self, state: State) -> float | None:
        """Test accuracy if the whole test set still fits the budget, else None (or no test set)."""
        if not len(self.split.y_test):
            return None
        try:
            return self.test_accuracy(state)
        except BudgetExceeded:
            return None

    def test_accuracy(self, state: State) -> float:
        """The test set through what the run serves at ``state`` (paid, or cached)."""
        scores = self.predict_scores(*self._serving(state, keep=len(self.split.y_test)), self.split.x_test, state.vocabulary)
        return accuracy(scores, self.split.y_test)

    def _mapper_at_w(self, state: State, keep: int) -> Mapper:
        """The mapper predictions use, except before a closing pass (mid-run with --eval-every,
        or evaluating an interrupted run): then the one the pass would fit at this W, used for
        this measurement only, so that the run's course never depends on it."""
        if state.mapping.lags(state.iteration):
            return state.mapping.fitted(self.training_answers(state, keep=keep), self.split.y_train)
        return state.mapping.serving_mapper(state.iteration)

    # -- pieces ------------------------------------------------------------------------------
    def dense(self, responses: list[Scores], vocabulary: list[str]) -> np.ndarray:
        """Answers as an (images, vocabulary) array, labels an answer left out filled in."""
        index = {label: i for i, label in enumerate(vocabulary)}
        return np.stack([labelling.fill_missing(r, vocabulary, index) for r in responses])

    def loss(self, scores: np.ndarray, labels: np.ndarray) -> float:
        method = self.config.method
        if method.relative_scores:
            # Accuracy depends only on how the target classes compare, not on their absolute
            # share of the source distribution.
            scores = scores / scores.sum(axis=1, keepdims=True)
        return LOSSES[method.loss](scores, labels, self.weights, method.focal_gamma)

    def _train_accuracy(self, state: State) -> float | None:
        return float(state.recent_correct.mean()) if len(state.recent_correct) else None

    def checkpoint(self, state: State, test_accuracy: float | None) -> None:
        if self.lease is not None:
            self.lease.check()
        self._current = state
        arrays = self.optimizer.state() | state.mapping.state(state.iteration) | (self.selection.state() if self.selection else {})
        arrays |= (self.portfolio.state() if self.portfolio else {}) | {"portfolio.paid": np.asarray(state.candidates_paid)}
        arrays |= {"portfolio.earlier": self.earlier} if self.earlier is not None else {}
        blob = RunState(state.iteration, state.vocabulary, state.recent_correct, state.last_loss, arrays).encode()
        paid, spent = self.budget.spent_queries, self.budget.spent_usd
        metrics = MetricRow(
            run=self.config.name, iteration=state.iteration, queries_paid=paid, queries_cached=self.engine.queries_cached,
            cost_usd=spent, loss=state.last_loss, train_accuracy=self._train_accuracy(state), test_accuracy=test_accuracy, ts=time.time(),
        )
        self.store.save_checkpoint(self.record, state.iteration, blob, metrics)

    def restore(self) -> State | None:
        """The run's state from its checkpoint (None before the first), optimiser and mapping included."""
        saved, self._loaded = self._loaded or load_state(self.store, self.config.name), None
        if saved is None:
            return None
        self.optimizer.load(saved.arrays)
        self.selection = Selection.restored(saved.arrays)
        self.portfolio = Portfolio.restored(saved.arrays)
        self.earlier = saved.arrays.get("portfolio.earlier")
        mapping = restored_mapping(self.config.method, self.split.n_classes, saved.arrays, saved.iteration)
        paid = int(saved.arrays.get("portfolio.paid", 0))
        state = State(saved.iteration, saved.vocabulary, mapping, saved.recent_correct, saved.last_loss, paid)
        self._current = state
        self._focus(state)
        return state

    def _result(self, state: State, status: str, test_accuracy: float | None) -> RunResult:
        paid, spent = self.store.spent(self.config.name)
        return RunResult(
            run=self.config.name, status=status, iterations=state.iteration,
            queries=paid + self.engine.queries_cached, queries_paid=paid, queries_cached=self.engine.queries_cached,
            cost_usd=round(spent, 6), budget_usd=self.config.budget_usd,
            train_accuracy=self._train_accuracy(state), test_accuracy=test_accuracy,
            program_sha256=program_sha256(self._served_programs(state)), step_signal=self.optimizer.signal.ratio,
            **signal_figures(self.optimizer.signal.reading(self.config.method.q)),
            selection=self.selection.as_json() if self.selection and self.selection.iteration == state.iteration else None,
            views=self.portfolio.views if self.portfolio is not None else 1,
            candidates_paid=state.candidates_paid if self.config.method.is_portfolio else None,
            validation_loss=round(self.portfolio.validation_loss, 6) if self.portfolio is not None else None,
        )

    def emit(self, phase: str, state: State | None, test_accuracy: float | None, notice: str | None = None) -> None:
        method, counting = self.config.method, phase == "candidates" and state is not None
        self.on_progress(Progress(
            phase=phase, iteration=state.candidates_paid if counting else (state.iteration if state else 0),
            iterations=method.candidates if counting else method.iterations,
            loss=state.last_loss if state else None, train_accuracy=self._train_accuracy(state) if state else None,
            test_accuracy=test_accuracy, queries_paid=self.budget.spent_queries, queries_cached=self.engine.queries_cached,
            cost_usd=self.budget.spent_usd, elapsed_s=time.monotonic() - self.started, notice=notice,
        ))


