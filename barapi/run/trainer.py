"""A run's session around its training stages: the lease, the run record, the budget and the
queries, the start (label mapping), the stages of the method (barapi.run.stages, driven through
barapi.run.session without knowing which), the closing pass, evaluation, and a checkpoint after
every step.

Reproducibility: every random draw comes from a generator of its own (``barapi.method.streams``), so a
run resumed from its checkpoint draws exactly what the uninterrupted run would have drawn, and
renders exactly the same bytes — whose responses are then free from the cache.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import numpy as np

from barapi.classifier import Classifier, Scores, canvas_encoding
from barapi.config import MethodConfig, RunConfig
from barapi.data import Split, run_split
from barapi.errors import BudgetExceeded, ConfigError
from barapi.method import labels as labelling
from barapi.method.gain import mapped_gain
from barapi.method.losses import LOSSES, accuracy, class_weights
from barapi.method.mapping import Mapper, Mapping
from barapi.method.optim import Optimizer
from barapi.method.program import Program, program_sha256
from barapi.method.signal import signal_figures
from barapi.method.free import read_free
from barapi.method.views import free_features
from barapi.money import Budget, cost_usd
from barapi.run.checkpoint import RunState, load_state, programs_of
from barapi.run.closing import ClosingPass
from barapi.run.opening import focus, start_run
from barapi.run.planning import ending_queries, free_baseline
from barapi.run.queries import QueryEngine
from barapi.run.records import Progress, RunResult, State
from barapi.run.session import Served, Serving, Stage, served_by
from barapi.run.stages import stages_for
from barapi.run.strategies import closing_queries, new_mapping, optimizer_for, restored_mapping
from barapi.store import Lease, MetricRow, RunRecord, Store


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
        self.stages = list(stages) if stages is not None else stages_for(method)
        self.closing = ClosingPass()
        if record_status:
            self.lease = Lease(store, config.name)  # refuses while another live process drives the run
            try:
                # Loaded into the stages here, so a stage refuses what it cannot resume before the record changes.
                self._loaded = self._into_stages(load_state(store, config.name))
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
        self.optimizer: Optimizer = optimizer or optimizer_for(method)
        self.mappings = mappings

    # -- public ------------------------------------------------------------------------------
    def run(self) -> RunResult:
        try:
            return self._run()
        finally:
            self.let_go()

    def _run(self) -> RunResult:
        saved = self.restore()
        self.engine.hold_for_ending(sum(self.ending(started=saved is not None)))
        state = saved or self.start()
        # The method's stages in order (barapi.run.stages); one stopped by the budget ends training.
        done = all(stage.run(self, state) for stage in self.stages)
        status = "completed" if done else "budget_exhausted"
        if self.lags(state):
            self.closing.run(self, state)
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
        self.let_go()

    def let_go(self) -> None:
        """Give back what the run holds: its pool hold, its slices, its lease."""
        self.engine.let_go()
        if self.lease is not None:
            self.lease.release()

    def predict_scores(self, serving: Serving, images: np.ndarray, vocabulary: list[str]) -> np.ndarray:
        """Target scores of each image through every served program: all views' queries go out
        together (the adapters batch or send them concurrently), and the mapper reads the views'
        answers side by side, then the free views' features (computed here, no query)."""
        encoded = [image for w in serving.programs for image in self.program.encode_batch(w, images)]
        answers = np.split(self.dense(self.engine.score(encoded, all_or_nothing=True), vocabulary), len(serving.programs)) if encoded else []
        return serving.mapper.target_scores(np.hstack([*answers, *free_features(serving.free, images)]))

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
        """The run's start: W0, the vocabulary and the label mapping (barapi.run.opening)."""
        return start_run(self)

    def ending(self, started: bool) -> tuple[int, int, int]:
        published = bool(self.classifier.labels())
        return ending_queries(self.config.method, len(self.split.y_train), len(self.split.y_test), published, started)

    def programs_of(self, runs: Sequence[str], shape: tuple[int, ...]) -> np.ndarray:
        return programs_of(self.store, list(runs), shape)

    def reserve_for_ending(self) -> int:
        """What training leaves in the budget: the mapping's closing pass and the test set (through
        every view), so that a run stopped by its budget still ends measured."""
        return closing_queries(self.config.method, len(self.split.y_train)) + self.config.method.views * len(self.split.y_test)

    def serving(self, state: State, keep: int) -> Serving:
        """The programs predictions send each image through, the free views, and the mapper over
        their answers and features: a stage's (a portfolio's), else the one program and its mapping."""
        served: Served | None = served_by(self.stages)
        if served is not None:
            return Serving(list(served.programs), served, served.free)
        return Serving([self.closing.served(self.optimizer.w, state.iteration)], self._mapper_at_w(state, keep), ())

    def lags(self, state: State) -> bool:
        """Whether the one program's predictions need a closing pass first (a stage that serves
        reads its own answers as it goes)."""
        return served_by(self.stages) is None and state.mapping.lags(state.iteration)

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
        scores = self.predict_scores(self.serving(state, keep=len(self.split.y_test)), self.split.x_test, state.vocabulary)
        return accuracy(scores, self.split.y_test)

    def _mapper_at_w(self, state: State, keep: int) -> Mapper:
        """The mapper predictions use, except before a closing pass (mid-run with --eval-every,
        or evaluating an interrupted run): then the one the pass would fit at this W, used for
        this measurement only, so that the run's course never depends on it."""
        if state.mapping.lags(state.iteration):
            return state.mapping.fitted(self.training_answers(state, keep=keep), self.split.y_train)
        return state.mapping.serving_mapper(state.iteration)

    # -- pieces ------------------------------------------------------------------------------
    def dense(self, responses: Sequence[Scores], vocabulary: list[str]) -> np.ndarray:
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
        arrays = self.optimizer.state() | state.mapping.state(state.iteration) | self.closing.state()
        for stage in self.stages:
            arrays |= stage.state()
        blob = RunState(state.iteration, state.vocabulary, state.recent_correct, state.last_loss, arrays).encode()
        paid, spent = self.budget.spent_queries, self.budget.spent_usd
        metrics = MetricRow(
            run=self.config.name, iteration=state.iteration, queries_paid=paid, queries_cached=self.engine.queries_cached,
            cost_usd=spent, loss=state.last_loss, train_accuracy=self._train_accuracy(state), test_accuracy=test_accuracy, ts=time.time(),
        )
        self.store.save_checkpoint(self.record, state.iteration, blob, metrics)

    def restore(self) -> State | None:
        """The run's state from its checkpoint (None before the first), optimiser and mapping included."""
        saved, self._loaded = self._loaded or self._into_stages(load_state(self.store, self.config.name)), None
        if saved is None:
            return None
        self.optimizer.load(saved.arrays)
        self.closing.load(saved.arrays)
        mapping = restored_mapping(self.config.method, self.split.n_classes, saved.arrays, saved.iteration)
        state = State(saved.iteration, saved.vocabulary, mapping, saved.recent_correct, saved.last_loss)
        self._current = state
        focus(self.classifier, state)
        return state

    def _into_stages(self, saved: RunState | None) -> RunState | None:
        """Each stage's state from a checkpoint, loaded once per checkpoint read."""
        for stage in self.stages if saved is not None else ():
            stage.load(self.config.name, self.config.method, saved.arrays, saved.iteration)
        return saved

    def _result(self, state: State, status: str, test_accuracy: float | None) -> RunResult:
        paid, spent = self.store.spent(self.config.name)
        figures = {key: value for stage in self.stages for key, value in stage.figures().items()}
        served = served_by(self.stages)
        if served is None:
            figures.setdefault("api_gain", self._one_program_gain(state))
        return RunResult(
            run=self.config.name, status=status, iterations=state.iteration,
            queries=paid + self.engine.queries_cached, queries_paid=paid, queries_cached=self.engine.queries_cached,
            cost_usd=round(spent, 6), budget_usd=self.config.budget_usd,
            train_accuracy=self._train_accuracy(state), test_accuracy=test_accuracy,
            program_sha256=program_sha256(served.programs if served else self.closing.served(self.optimizer.w, state.iteration)),
            step_signal=self.optimizer.signal.ratio,
            **signal_figures(self.optimizer.signal.reading(self.config.method.q)), selection=self.closing.figures(state.iteration),
            free_baseline=free_baseline(self.split, self.config.method.free_views, figures.get("api_gain")), **figures,
        )

    def _one_program_gain(self, state: State) -> dict | None:
        """What the served program's answers add to the images alone (barapi.method.gain), read
        from the cache (None where the training images were not answered at that program)."""
        w = self.closing.served(self.optimizer.w, state.iteration)
        answers = self.engine.cached(self.program.encode_batch(w, self.split.x_train))
        split, free = self.split, read_free(self.config.method.free_views, self.split.x_train)
        gain = answers and mapped_gain(state.mapping, self.dense(answers, state.vocabulary), free.yardstick, bool(free.specs), split.y_train, split.n_classes,
                                       cost_usd(1000, self.config.price_per_1k), optimistic=state.iteration > 0)
        return gain.as_json() if gain else None

    def emit(self, phase: str, state: State | None, test_accuracy: float | None, notice: str | None = None,
             counted: tuple[int, int] | None = None) -> None:
        done, of = counted or (state.iteration if state else 0, self.config.method.iterations)
        self.on_progress(Progress(
            phase=phase, iteration=done, iterations=of,
            loss=state.last_loss if state else None, train_accuracy=self._train_accuracy(state) if state else None,
            test_accuracy=test_accuracy, queries_paid=self.budget.spent_queries, queries_cached=self.engine.queries_cached,
            cost_usd=self.budget.spent_usd, elapsed_s=time.monotonic() - self.started, notice=notice,
        ))


