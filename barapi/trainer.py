"""Algorithm 1 against any Classifier, checkpointed after every iteration.

Reproducibility: every random draw comes from a generator seeded by (seed, purpose[, t]), never
from state that lives only in memory, so a run resumed from its checkpoint draws exactly what
the uninterrupted run would have drawn, and renders exactly the same bytes — whose responses
are then free from the cache.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from barapi import labels as labelling
from barapi.classifier import Classifier, Scores, SelectableLabels
from barapi.config import RunConfig
from barapi.data import Split, load_split
from barapi.errors import BudgetExceeded, ConfigError
from barapi.losses import accuracy, class_weights, cross_entropy, focal_loss
from barapi.money import Budget
from barapi.optim import ZerothOrderOptimizer, make_optimizer
from barapi.program import Program, initial_parameters, program_sha256
from barapi.readout import LinearReadout, target_mapper
from barapi.queries import QueryEngine
from barapi.store import MetricRow, RunRecord, Store

# Seeds for the independent random streams of a run.
INIT_STREAM, MAPPING_STREAM = 1, 2


@dataclass
class Progress:
    phase: str  # "mapping", "training", "reading" (the readout's closing pass), "evaluating", "done"
    iteration: int
    iterations: int
    loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    queries_paid: int
    queries_cached: int
    cost_usd: float
    elapsed_s: float


@dataclass
class RunResult:
    run: str
    status: str  # completed | budget_exhausted
    iterations: int
    queries: int
    queries_paid: int
    queries_cached: int
    cost_usd: float
    budget_usd: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    program_sha256: str

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class State:
    """What a checkpoint holds, besides the optimiser."""

    iteration: int
    vocabulary: list[str]
    assignment: np.ndarray
    recent_correct: np.ndarray  # correctness at W of the latest training samples (≤ one epoch)
    last_loss: float | None
    affinity_sums: np.ndarray  # per class, decayed sums of source probabilities at W (iterative mapping)
    affinity_counts: np.ndarray
    readout: dict[str, np.ndarray]  # the linear readout training steers by (mapping "linear"), else empty
    answers: np.ndarray  # linear mapping: the latest answers at W (≤ one per training image), float32
    answer_labels: np.ndarray
    # Linear mapping: the readout fitted on every training image answered at the W of
    # iteration ``read_at`` (the closing pass). The training readout is fitted on answers from
    # the last epoch's programs and lags behind W; this one is what predictions use, but never
    # steers training, so a run extended after its closing pass goes on as if never stopped.
    closing_readout: dict[str, np.ndarray] = field(default_factory=dict)
    read_at: int = -1

    def serving_readout(self) -> dict[str, np.ndarray]:
        """The readout predictions use: the closing one if it was fitted at the current W."""
        return self.closing_readout if self.read_at == self.iteration else self.readout

    def mapper(self) -> labelling.LabelMap | LinearReadout:
        """What turns answers at the current W into target scores for a prediction."""
        return target_mapper(self.assignment, self.serving_readout())

    def training_mapper(self) -> labelling.LabelMap | LinearReadout:
        return target_mapper(self.assignment, self.readout)


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}


def run_split(config: RunConfig) -> Split:
    """The run's training and test images, exactly as every resume reloads them."""
    return load_split(
        config.data.dataset,
        embed_size=config.method.geometry.embed_size,
        train_per_class=config.data.train_per_class,
        test_size=config.data.test_size,
        seed=config.seed,
    )


class Trainer:
    def __init__(
        self, config: RunConfig, classifier: Classifier, store: Store,
        on_progress: Callable[[Progress], None] | None = None, *, record_status: bool = True, split: Split | None = None,
    ) -> None:
        """``record_status=False`` opens an existing run read-only (eval): it is not marked
        running and its in-flight reservations are left alone. ``split``: the run's data, if the
        caller already loaded it (see ``run_split``)."""
        self.config = config
        self.classifier = classifier
        self.store = store
        self.on_progress = on_progress or (lambda _: None)
        method = config.method
        self.program = Program(method.geometry)
        self.split = split or run_split(config)
        if method.batch_size > len(self.split.y_train):
            raise ConfigError(f"--batch-size {method.batch_size} exceeds the {len(self.split.y_train)} training images")
        self.weights = class_weights(self.split.y_train, self.split.n_classes)
        if record_status:
            self.record = self._open_record()
            store.mark_lost(config.name)  # this process owns the run: what was in flight died
        else:
            self.record = store.get_run(config.name)
        paid, spent = store.spent(config.name)
        self.budget = Budget(max_usd=config.budget_usd, max_queries=config.max_queries, per_1k=config.price_per_1k, spent_usd=spent, spent_queries=paid)
        self.engine = QueryEngine(classifier, store, self.budget, config.name)
        self.started = time.monotonic()
        self.optimizer: ZerothOrderOptimizer = make_optimizer(
            np.zeros(method.geometry.parameter_shape),
            estimator=method.estimator, q=method.q, beta=method.beta,
            optimizer=method.optimizer, lr=method.lr, lr_decay=method.lr_decay,
        )

    # -- public ------------------------------------------------------------------------------
    def run(self) -> RunResult:
        method = self.config.method
        state = self._restore() or self._start()
        status = "completed"
        while state.iteration < method.iterations:
            if not self._step(state):
                status = "budget_exhausted"
                break
        self._read_training_set(state)
        test_accuracy = self._final_evaluation()
        self._checkpoint(state, test_accuracy)  # the same state; its metrics row gains the test accuracy
        result = self._result(state, status, test_accuracy)
        self.record.status = status
        self.record.result = json.dumps(result.as_json())
        self.store.save_run(self.record)
        self._emit("done", state, test_accuracy)
        return result

    def mark(self, status: str) -> None:
        """Record why the run stopped early (interrupted, failed, budget_exhausted)."""
        self.record.status = status
        self.store.save_run(self.record)

    def evaluate(self, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(true labels, predicted labels) of the run's current program on its test split, or on
        the images given; every query goes through the budget, cache and ledger."""
        state = self._restore()
        if state is None:
            raise ConfigError(f"run {self.config.name!r} has no checkpoint yet: train it first")
        images = self.split.x_test if images is None else images
        truth = self.split.y_test if labels is None else labels
        scores = self.predict_scores(self.optimizer.w, images, state.vocabulary, self._mapper_at_w(state, keep=len(images)))
        return truth, np.argmax(scores, axis=1)

    def predict_scores(self, w: np.ndarray, images: np.ndarray, vocabulary: list[str], mapper: labelling.LabelMap | LinearReadout) -> np.ndarray:
        responses = self.engine.score(self.program.encode_batch(w, images), all_or_nothing=True)
        return mapper.target_scores(self._dense(responses, vocabulary))

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

    def _start(self) -> State:
        """Random W0, then the label mapping from W0's predictions on the training set."""
        method = self.config.method
        w0 = initial_parameters(method.geometry, method.init_scale, np.random.default_rng([self.config.seed, INIT_STREAM]))
        self.optimizer.w = w0
        n_classes = self.split.n_classes
        vocabulary = list(self.classifier.labels() or [])
        responses: list[Scores] = []
        if method.mapping != "random" or not vocabulary:
            self._emit("mapping", None, None)
            responses = self.engine.score(self.program.encode_batch(w0, self.split.x_train))
        if not vocabulary:
            # The API does not publish its labels: use every label it has shown us.
            vocabulary = sorted({label for r in responses for label in r})
        sums, counts = np.zeros((n_classes, len(vocabulary))), np.zeros(n_classes)
        readout: dict[str, np.ndarray] = {}
        answers, answer_labels = np.zeros((0, len(vocabulary)), np.float32), np.zeros(0, int)
        if method.mapping == "random":
            rng = np.random.default_rng([self.config.seed, MAPPING_STREAM])
            label_map = labelling.random_mapping(len(vocabulary), n_classes, method.labels_per_class, rng)
        else:
            dense = self._dense(responses, vocabulary)
            label_map = labelling.frequency_mapping(dense, self.split.y_train, n_classes, method.labels_per_class)
            sums, counts = labelling.class_sums(dense, self.split.y_train, n_classes)
            if method.mapping == "linear":
                answers, answer_labels = dense.astype(np.float32), self.split.y_train.copy()
                readout = self._fit_readout(answers, answer_labels)
        # The mapping's answers are every training image at W0: the readout is already a closing one.
        state = State(0, vocabulary, label_map.assignment, np.zeros(0), None, sums, counts, readout, answers, answer_labels, readout, 0 if readout else -1)
        self._focus(state)
        self._checkpoint(state, test_accuracy=None)
        return state

    def _focus(self, state: State) -> None:
        """Providers that can be asked for exactly the mapped labels are, from here on: top-k
        truncation then never hides one. (Not with an iterative mapping, which must keep seeing
        every label to re-fit, nor with the linear readout, which reads every label.)"""
        if isinstance(self.classifier, SelectableLabels) and self.config.method.mapping in ("frequency", "random"):
            self.classifier.restrict_to(sorted({state.vocabulary[i] for i in state.assignment.ravel()}))

    def _step(self, state: State) -> bool:
        """One iteration of Algorithm 1; False when its queries no longer fit the budget."""
        method = self.config.method
        rng = np.random.default_rng([self.config.seed, state.iteration])
        batch = rng.choice(len(self.split.y_train), size=method.batch_size, replace=False)
        candidates = self.optimizer.ask(rng)
        targets = self.split.x_train[batch]
        images = [image for w in candidates for image in self.program.encode_batch(w, targets)]
        try:
            responses = self.engine.score(images, all_or_nothing=True, keep=self._closing_queries())
        except BudgetExceeded:
            return False
        mapper = state.training_mapper()
        labels = self.split.y_train[batch]
        losses = []
        for c in range(len(candidates)):
            dense = self._dense(responses[c * len(batch) : (c + 1) * len(batch)], state.vocabulary)
            scores = mapper.target_scores(dense)
            losses.append(self._loss(scores, labels))
            if c == 0:
                correct = (np.argmax(scores, axis=1) == labels).astype(float)
                at_w = dense
        self.optimizer.tell(losses)
        state.iteration += 1
        state.last_loss = losses[0]
        state.recent_correct = np.concatenate([state.recent_correct, correct])[-len(self.split.y_train) :]
        if method.mapping == "iterative":
            self._refit_mapping(state, at_w, labels)
        elif method.mapping == "linear":
            self._refit_readout(state, at_w, labels)
        test_accuracy = None
        if method.eval_every and state.iteration % method.eval_every == 0 and state.iteration < method.iterations:
            test_accuracy = self._evaluate_if_affordable(state)
        self._checkpoint(state, test_accuracy)
        self._emit("training", state, test_accuracy)
        return True

    def _closing_queries(self) -> int:
        """What training must leave in the budget: the linear readout's closing pass."""
        return len(self.split.y_train) if self.config.method.mapping == "linear" else 0

    def _read_training_set(self, state: State) -> None:
        """The linear readout's closing pass: every training image answered at the final W and
        the readout fitted on those answers alone. Fitted on the rolling buffer instead, whose
        answers come from the last epoch's programs, it lags behind W, and test accuracy
        drops by several points (bench/results/efficiency-without-closing-pass.md against
        efficiency.md). Skipped if the budget no longer allows it (training leaves room for
        it, so only a lowered budget does that)."""
        if not self._readout_lags(state):
            return
        self._emit("reading", state, None)
        try:
            state.closing_readout = self._readout_at_w(state)
        except BudgetExceeded:
            return
        state.read_at = state.iteration
        self._checkpoint(state, test_accuracy=None)

    def _readout_lags(self, state: State) -> bool:
        """Linear mapping only: no closing pass has been made at the current W."""
        return self.config.method.mapping == "linear" and state.read_at != state.iteration

    def _readout_at_w(self, state: State, keep: int = 0) -> dict[str, np.ndarray]:
        """The readout fitted on every training image answered at the current W."""
        responses = self.engine.score(self.program.encode_batch(self.optimizer.w, self.split.x_train), all_or_nothing=True, keep=keep)
        return self._fit_readout(self._dense(responses, state.vocabulary), self.split.y_train)

    def _fit_readout(self, answers: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        return LinearReadout.fit(answers.astype(np.float64), labels, self.split.n_classes, self.config.method.readout_l2).state()

    def _refit_readout(self, state: State, dense: np.ndarray, labels: np.ndarray) -> None:
        """The readout follows the program: the answers at W this step paid for replace the
        oldest ones, and every few steps the readout is fitted again on them."""
        keep = len(self.split.y_train)
        state.answers = np.concatenate([state.answers, dense.astype(np.float32)])[-keep:]
        state.answer_labels = np.concatenate([state.answer_labels, labels])[-keep:]
        if state.iteration % self.config.method.remap_every == 0:
            state.readout = self._fit_readout(state.answers, state.answer_labels)

    def _refit_mapping(self, state: State, dense: np.ndarray, labels: np.ndarray) -> None:
        """ILM-VP made black-box: the answers at W that this step already paid for update each
        class's affinity to the source labels; every few steps the mapping is re-fitted."""
        method = self.config.method
        sums, counts = labelling.class_sums(dense, labels, self.split.n_classes)
        state.affinity_sums = method.remap_memory * state.affinity_sums + sums
        state.affinity_counts = method.remap_memory * state.affinity_counts + counts
        if state.iteration % method.remap_every == 0:
            affinity = state.affinity_sums / np.maximum(state.affinity_counts, 1e-12)[:, None]
            state.assignment = labelling.greedy_mapping(affinity, method.labels_per_class).assignment

    def _final_evaluation(self) -> float | None:
        self._emit("evaluating", self._current, None)
        return self._evaluate_if_affordable(self._current)

    def _evaluate_if_affordable(self, state: State) -> float | None:
        """Test accuracy if the whole test set still fits the budget, else None."""
        try:
            return self._evaluate(state)
        except BudgetExceeded:
            return None

    def _evaluate(self, state: State) -> float:
        scores = self.predict_scores(self.optimizer.w, self.split.x_test, state.vocabulary, self._mapper_at_w(state, keep=len(self.split.y_test)))
        return accuracy(scores, self.split.y_test)

    def _mapper_at_w(self, state: State, keep: int) -> labelling.LabelMap | LinearReadout:
        """The state's mapper, except before a closing pass (mid-run with --eval-every, or
        evaluating an interrupted run): then the readout the pass would fit at this W, used
        for this measurement only, so that the run's course never depends on it."""
        if self._readout_lags(state):
            return LinearReadout.from_state(self._readout_at_w(state, keep=keep))
        return state.mapper()

    # -- pieces ------------------------------------------------------------------------------
    def _dense(self, responses: list[Scores], vocabulary: list[str]) -> np.ndarray:
        index = {label: i for i, label in enumerate(vocabulary)}
        return np.stack([labelling.fill_missing(r, vocabulary, index) for r in responses])

    def _loss(self, scores: np.ndarray, labels: np.ndarray) -> float:
        method = self.config.method
        if method.relative_scores:
            # Accuracy depends only on how the target classes compare, not on their absolute
            # share of the source distribution.
            scores = scores / scores.sum(axis=1, keepdims=True)
        if method.loss == "ce":
            return cross_entropy(scores, labels)
        return focal_loss(scores, labels, self.weights, method.focal_gamma)

    def _train_accuracy(self, state: State) -> float | None:
        return float(state.recent_correct.mean()) if len(state.recent_correct) else None

    def _checkpoint(self, state: State, test_accuracy: float | None) -> None:
        self._current = state
        buffer = io.BytesIO()
        arrays = self.optimizer.state() | {
            "iteration": np.asarray(state.iteration),
            "vocabulary": np.asarray(state.vocabulary, dtype=str),
            "assignment": state.assignment,
            "recent_correct": state.recent_correct,
            "last_loss": np.asarray(np.nan if state.last_loss is None else state.last_loss),
            "affinity_sums": state.affinity_sums,
            "affinity_counts": state.affinity_counts,
            "answers": state.answers,
            "answer_labels": state.answer_labels,
            "read_at": np.asarray(state.read_at),
        } | {f"training_readout.{k}": v for k, v in state.readout.items()}
        # "readout.*" is what predictions use (LearnedProgram.from_run reads it).
        arrays |= {f"readout.{k}": v for k, v in state.serving_readout().items()}
        np.savez(buffer, **arrays)
        paid, spent = self.budget.spent_queries, self.budget.spent_usd
        metrics = MetricRow(
            run=self.config.name, iteration=state.iteration, queries_paid=paid, queries_cached=self.engine.queries_cached,
            cost_usd=spent, loss=state.last_loss, train_accuracy=self._train_accuracy(state), test_accuracy=test_accuracy, ts=time.time(),
        )
        self.store.save_checkpoint(self.record, state.iteration, buffer.getvalue(), metrics)

    def _restore(self) -> State | None:
        checkpoint = self.store.load_checkpoint(self.config.name)
        if checkpoint is None:
            return None
        with np.load(io.BytesIO(checkpoint.state), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        self.optimizer.load(arrays)
        last_loss = float(arrays["last_loss"])
        state = State(
            iteration=int(arrays["iteration"]),
            vocabulary=[str(v) for v in arrays["vocabulary"]],
            assignment=arrays["assignment"],
            recent_correct=arrays["recent_correct"],
            last_loss=None if np.isnan(last_loss) else last_loss,
            affinity_sums=arrays["affinity_sums"],
            affinity_counts=arrays["affinity_counts"],
            # Checkpoints written before the closing pass existed hold one readout, for both uses.
            readout=prefixed(arrays, "training_readout.") or prefixed(arrays, "readout."),
            # Checkpoints written before the linear readout existed hold no answers.
            answers=arrays.get("answers", np.zeros((0, len(arrays["vocabulary"])), np.float32)),
            answer_labels=arrays.get("answer_labels", np.zeros(0, int)),
            read_at=int(arrays.get("read_at", -1)),
        )
        if state.read_at == state.iteration:
            state.closing_readout = prefixed(arrays, "readout.")
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
            program_sha256=program_sha256(self.optimizer.w),
        )

    def _emit(self, phase: str, state: State | None, test_accuracy: float | None) -> None:
        self.on_progress(Progress(
            phase=phase, iteration=state.iteration if state else 0, iterations=self.config.method.iterations,
            loss=state.last_loss if state else None, train_accuracy=self._train_accuracy(state) if state else None,
            test_accuracy=test_accuracy, queries_paid=self.budget.spent_queries, queries_cached=self.engine.queries_cached,
            cost_usd=self.budget.spent_usd, elapsed_s=time.monotonic() - self.started,
        ))
