"""The trainer against a fast, deterministic stand-in model (a fixed random projection of the
decoded PNG): resume is bit-identical whatever the method, budgets stop cleanly."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from fakes import ProjectionModel

from barapi.config import DataConfig, MethodConfig, ProviderConfig, RunConfig
from barapi.errors import ProviderError
from barapi.method.estimators import ESTIMATORS
from barapi.method.steps import STEP_RULES
from barapi.run.planning import estimate_run
from barapi.config import Geometry
from barapi.method.readout import LinearReadout
from barapi.store import Store
from barapi.run.trainer import Trainer
from barapi.run.evaluation import evaluate_images


def config(name: str = "run", **method: object) -> RunConfig:
    base = dict(iterations=6, batch_size=4, q=2, beta=1.0, lr=0.05, labels_per_class=2, remap_every=2, estimator="one-sided",
                geometry=Geometry(canvas_size=32, embed_size=12, program_resolution=4))
    return RunConfig(name=name, seed=3, provider=ProviderConfig(name="fake"),
                     data=DataConfig(train_per_class=3, test_size=12), method=MethodConfig(**(base | method)), price_per_1k=1.0)


@pytest.mark.parametrize("mapping", ["frequency", "random", "iterative", "linear"])
@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
@pytest.mark.parametrize("optimizer", sorted(STEP_RULES))
def test_a_crashed_run_resumes_bit_identically(tmp_path: Path, mapping: str, estimator: str, optimizer: str) -> None:
    settings = dict(mapping=mapping, estimator=estimator, optimizer=optimizer, keep_better_start=True)
    reference = Trainer(config(**settings), ProjectionModel(), Store(tmp_path / "ref")).run()
    store = Store(tmp_path / "crashed")
    with pytest.raises(ProviderError):
        Trainer(config(**settings), ProjectionModel(fail_after=15), store).run()
    assert store.load_checkpoint("run").iteration < 6  # it really stopped midway
    resumed = Trainer(config(**settings), ProjectionModel(), store).run()
    assert resumed.program_sha256 == reference.program_sha256
    assert resumed.test_accuracy == reference.test_accuracy
    assert resumed.queries_paid == reference.queries_paid  # nothing paid twice: answers were cached
    assert resumed.step_signal == reference.step_signal


COSINE_PLACED = Geometry(canvas_size=32, embed_size=12, program_resolution=4, basis="cosine", visible_size=28)


@pytest.mark.parametrize("mapping", ["frequency", "linear"])
@pytest.mark.parametrize(("optimizer", "geometry"), [("cma-es", None), ("adam", COSINE_PLACED), ("cma-es", COSINE_PLACED)])
def test_cma_es_and_a_placed_cosine_program_resume_bit_identically_and_cost_what_was_estimated(
    tmp_path: Path, mapping: str, optimizer: str, geometry: Geometry | None
) -> None:
    settings = dict(mapping=mapping, optimizer=optimizer, estimator="two-sided") | ({"geometry": geometry} if geometry else {})
    store = Store(tmp_path / "ref")
    planned = estimate_run(config(**settings), ProjectionModel(), store)
    reference = Trainer(config(**settings), ProjectionModel(), store).run()
    assert reference.queries == planned.total
    crashed = Store(tmp_path / "crashed")
    with pytest.raises(ProviderError):
        Trainer(config(**settings), ProjectionModel(fail_after=15), crashed).run()
    assert crashed.load_checkpoint("run").iteration < 6
    resumed = Trainer(config(**settings), ProjectionModel(), crashed).run()
    assert (resumed.program_sha256, resumed.test_accuracy, resumed.queries_paid, resumed.step_signal) == (
        reference.program_sha256, reference.test_accuracy, reference.queries_paid, reference.step_signal)


def test_top_k_answers_train_too(tmp_path: Path) -> None:
    full = Trainer(config(), ProjectionModel(), Store(tmp_path / "full")).run()
    top_k = Trainer(config(), ProjectionModel(top_k=5), Store(tmp_path / "top-k")).run()
    start = Trainer(config(iterations=0), ProjectionModel(top_k=5), Store(tmp_path / "start")).run()
    assert top_k.queries == full.queries and top_k.test_accuracy is not None  # the same plan, measured
    assert top_k.program_sha256 != start.program_sha256  # its steps moved W, reading 5 scores an answer
    assert top_k.program_sha256 != full.program_sha256  # and what they read was the top 5, not every label


def test_budget_exhaustion_checkpoints_and_can_be_raised(tmp_path: Path) -> None:
    store = Store(tmp_path)
    # mapping (30 images) + 3 iterations × 12 + the readout's closing pass (30) + the test set (12)
    # = 108 images at $1/1k: training stops where the closing pass and the test set still fit.
    stopped = Trainer(config().model_copy(update={"budget_usd": 0.108}), ProjectionModel(), store).run()
    assert stopped.status == "budget_exhausted" and stopped.iterations == 3
    assert read_at(store) == 3  # training left room for the closing pass…
    assert stopped.test_accuracy is not None  # …and for the test set: a stopped run ends measured
    assert stopped.cost_usd <= 0.108
    finished = Trainer(config().model_copy(update={"budget_usd": 1.0}), ProjectionModel(), store).run()
    reference = Trainer(config(), ProjectionModel(), Store(tmp_path / "ref")).run()
    assert finished.status == "completed" and finished.program_sha256 == reference.program_sha256


def test_a_budget_that_cannot_measure_the_program_is_refused_before_any_query(tmp_path: Path) -> None:
    from barapi.errors import ConfigError

    store = Store(tmp_path)
    with pytest.raises(ConfigError, match=r"cannot cover the label mapping \(30\), the closing pass \(30\) and the test set \(12\)"):
        Trainer(config().model_copy(update={"max_queries": 71}), ProjectionModel(), store).run()
    assert store.spent("run") == (0, 0.0)


def read_at(store: Store, run: str = "run") -> int:
    with np.load(io.BytesIO(store.load_checkpoint(run).state)) as archive:
        return int(archive["read_at"])


def test_the_linear_readout_is_fitted_at_the_final_program(tmp_path: Path) -> None:
    """Not on the rolling buffer of answers from the last epoch's programs, which lags behind W."""
    store = Store(tmp_path)
    model = ProjectionModel()
    trainer = Trainer(config(), model, store)
    result = trainer.run()
    state = trainer.restore()
    assert state.mapping.read_at == state.iteration == 6
    answers = trainer.dense(model.predict(trainer.program.encode_batch(trainer.optimizer.w, trainer.split.x_train)), state.vocabulary)
    refitted = LinearReadout.fit(answers, trainer.split.y_train, trainer.split.n_classes, trainer.config.method.readout_l2)
    np.testing.assert_allclose(state.mapping.closing_readout["weights"], refitted.weights, rtol=1e-5, atol=1e-8)
    mapping, training, closing, test = 30, 6 * 12, 30, 12
    assert result.queries == mapping + training + closing + test


def test_evaluating_an_interrupted_run_reads_the_training_set_at_its_program(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(ProviderError):
        Trainer(config(), ProjectionModel(fail_after=15), store).run()
    evaluator = Trainer(config(), ProjectionModel(), store, record_status=False)
    state = evaluator.restore()
    assert 0 < state.iteration < 6 and state.mapping.read_at != state.iteration  # stopped before its closing pass
    truth, predicted = evaluate_images(evaluator)
    model = ProjectionModel()
    def dense(images: np.ndarray) -> np.ndarray:
        return evaluator.dense(model.predict(evaluator.program.encode_batch(evaluator.optimizer.w, images)), state.vocabulary)
    readout = LinearReadout.fit(dense(evaluator.split.x_train), evaluator.split.y_train, evaluator.split.n_classes, evaluator.config.method.readout_l2)
    np.testing.assert_array_equal(predicted, np.argmax(readout.target_scores(dense(evaluator.split.x_test)), axis=1))
    assert evaluator.restore().mapping.read_at == state.mapping.read_at  # a measurement: the run itself is untouched


def test_interim_evaluations_never_change_the_course_of_a_run(tmp_path: Path) -> None:
    plain = Trainer(config(), ProjectionModel(), Store(tmp_path / "a")).run()
    measured_store = Store(tmp_path / "b")
    measured = Trainer(config(eval_every=2), ProjectionModel(), measured_store).run()
    assert measured.program_sha256 == plain.program_sha256 and measured.test_accuracy == plain.test_accuracy
    interim = [m.test_accuracy for m in measured_store.metrics("run") if m.test_accuracy is not None]
    assert len(interim) == 3  # iterations 2 and 4, and the final one


def test_iterative_mapping_changes_the_mapping_from_paid_answers_only(tmp_path: Path) -> None:
    from barapi.run.checkpoint import load_state

    stores = {mapping: Store(tmp_path / mapping) for mapping in ("frequency", "iterative")}
    fixed, moving = (Trainer(config(mapping=m, iterations=8), ProjectionModel(), store).run() for m, store in stores.items())
    assert moving.queries_paid == fixed.queries_paid  # re-fitting costs no query
    # Both start from the same W0's frequency mapping; only the iterative one moved it.
    start, moved = (load_state(store, "run").arrays["assignment"] for store in stores.values())
    assert start.shape == moved.shape and not np.array_equal(start, moved)


@pytest.mark.parametrize("mapping", ["frequency", "random", "iterative"])
def test_an_explicit_labels_per_class_must_fit_the_vocabulary(tmp_path: Path, mapping: str) -> None:
    from barapi.errors import ConfigError

    store = Store(tmp_path)
    with pytest.raises(ConfigError, match="labels-per-class"):
        Trainer(config(labels_per_class=7, mapping=mapping), ProjectionModel(), store).run()  # 10 classes × 7 > 60 labels
    assert store.spent("run") == (0, 0.0)  # refused before a single paid query


def test_the_linear_readout_needs_no_labels_per_class(tmp_path: Path) -> None:
    # 10 classes × 7 labels do not fit 60 labels; the readout over every label does not care.
    wide = Trainer(config(labels_per_class=7, mapping="linear"), ProjectionModel(), Store(tmp_path / "7")).run()
    narrow = Trainer(config(labels_per_class=2, mapping="linear"), ProjectionModel(), Store(tmp_path / "2")).run()
    assert (wide.program_sha256, wide.test_accuracy, wide.queries) == (narrow.program_sha256, narrow.test_accuracy, narrow.queries)


def test_opening_a_run_read_only_leaves_its_requests_in_flight_alone(tmp_path: Path) -> None:
    store = Store(tmp_path)
    Trainer(config(), ProjectionModel(), store).run()
    store.reserve("run", "fake", "projection", ["in-flight"], 0.001)  # another process is sending
    evaluator = Trainer(config(), ProjectionModel(), store, record_status=False)
    evaluate_images(evaluator)
    assert store.ledger_counts("run").get("reserved") == 1
    assert store.get_run("run").status == "completed"
    Trainer(config(), ProjectionModel(), store)  # the owner reopening it: that request died
    assert store.ledger_counts("run").get("lost") == 1


def test_the_linear_readout_is_refitted_from_paid_answers_only(tmp_path: Path) -> None:
    store = Store(tmp_path)
    trainer = Trainer(config(mapping="linear"), ProjectionModel(), store)
    state = trainer.start()
    first = state.mapping.readout["weights"].copy()
    paid_after_mapping = store.spent("run")[0]
    result = Trainer(config(mapping="linear"), ProjectionModel(), store).run()
    restored = Trainer(config(mapping="linear"), ProjectionModel(), store).restore()
    assert not np.array_equal(restored.mapping.readout["weights"], first)  # refitted during training…
    assert len(restored.mapping.answers) == len(restored.mapping.answer_labels) == 30  # …on one answer per training image
    training, closing, test = 6 * 4 * 3, 30, 12  # iterations × batch × (q + 1), the closing pass, the test set
    assert result.queries == paid_after_mapping + training + closing + test  # nothing more was bought for the refits


def test_a_checkpoint_from_before_the_closing_pass_still_resumes_to_the_same_program(tmp_path: Path) -> None:
    """Linear-mapping checkpoints written before the closing pass existed hold one readout
    (``readout.*``) and no ``training_readout.*`` or ``read_at``: the run resumes from them."""
    import io

    reference = Trainer(config(mapping="linear"), ProjectionModel(), Store(tmp_path / "ref")).run()
    store = Store(tmp_path / "old")
    with pytest.raises(ProviderError):
        Trainer(config(mapping="linear"), ProjectionModel(fail_after=15), store).run()
    checkpoint = store.load_checkpoint("run")
    with np.load(io.BytesIO(checkpoint.state)) as archive:
        arrays = {k: archive[k] for k in archive.files if not k.startswith("training_readout.") and k != "read_at"}
    assert any(k.startswith("readout.") for k in arrays) and len(arrays) < len(np.load(io.BytesIO(checkpoint.state)).files)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with store.session() as session:
        checkpoint.state = buffer.getvalue()
        session.merge(checkpoint)
        session.commit()
    resumed = Trainer(config(mapping="linear"), ProjectionModel(), store).run()
    # Mid-run, the readout predictions would use is the training one: nothing was lost.
    assert (resumed.program_sha256, resumed.test_accuracy, resumed.queries_paid) == (
        reference.program_sha256, reference.test_accuracy, reference.queries_paid)


def test_no_two_purposes_of_a_run_share_a_random_stream() -> None:
    """Step t was once seeded (seed, t): the starting W's generator at t = 1, the random
    mapping's at t = 2."""
    from barapi.method.streams import Stream, generator

    draws = [generator(3, Stream.INIT).random(4), generator(3, Stream.MAPPING).random(4)]
    draws += [generator(3, Stream.STEP, t).random(4) for t in range(50)]
    assert len({d.tobytes() for d in draws}) == len(draws)


class ForgetfulModel(ProjectionModel):
    """Answers its first ``remembered`` images from the projection and every later one with
    scores that carry nothing about them (a random projection seeded by the image's bytes): a
    model that training can only lose on."""

    def __init__(self, remembered: int) -> None:
        super().__init__()
        self.remembered, self.seen = remembered, 0

    def answer(self, image: bytes) -> dict[str, float]:
        self.seen += 1
        if self.seen <= self.remembered:
            return super().answer(image)
        p = np.random.default_rng(list(hashlib.sha256(image).digest())).dirichlet(np.ones(60))
        return {f"label{i:02d}": float(v) for i, v in enumerate(p)}


def test_a_run_whose_training_lost_ends_with_its_start_at_no_extra_query(tmp_path: Path) -> None:
    from barapi.run.artifact import LearnedProgram
    from barapi.run.checkpoint import require_state
    from barapi.method.program import program_sha256, starting_parameters

    store = Store(tmp_path / "kept")
    kept = Trainer(config(mapping="linear", keep_better_start=True), ForgetfulModel(remembered=30), store).run()  # the label mapping's 30 answers
    w0 = starting_parameters(config().method, config().seed)
    assert kept.selection["kept"] == "start"
    assert kept.selection["start_heldout_accuracy"] > kept.selection["trained_heldout_accuracy"]
    assert kept.program_sha256 == program_sha256(w0)
    assert program_sha256(require_state(store, "run").program) == program_sha256(w0)
    assert LearnedProgram.from_run(store, "run", [str(c) for c in range(10)]).sha256 == program_sha256(w0)  # exports serve it too
    mapping, training, closing, test = 30, 6 * 4 * 3, 30, 12
    assert kept.queries == mapping + training + closing + test  # the start's answers were read from the cache, not bought again

    trained = Trainer(config(mapping="linear"), ForgetfulModel(remembered=30), Store(tmp_path / "trained")).run()  # off by default
    assert trained.selection is None and trained.program_sha256 not in (program_sha256(w0), kept.program_sha256)


def test_a_run_extended_after_keeping_its_start_serves_its_w_until_it_chooses_again(tmp_path: Path) -> None:
    from barapi.run.checkpoint import require_state
    from barapi.method.program import starting_parameters

    store = Store(tmp_path)
    assert Trainer(config(mapping="linear", keep_better_start=True), ForgetfulModel(remembered=30), store).run().selection["kept"] == "start"
    with pytest.raises(ProviderError):  # one more step (3 requests of 4 images), then a crash
        Trainer(config(mapping="linear", iterations=8, keep_better_start=True), ProjectionModel(fail_after=3), store).run()
    midway = require_state(store, "run")
    assert midway.iteration == 7
    np.testing.assert_array_equal(midway.program, midway.w)  # the choice was the 6th iteration's
    extended = Trainer(config(mapping="linear", iterations=8, keep_better_start=True), ProjectionModel(), store).run()
    end = require_state(store, "run")
    assert end.iteration == 8 and extended.selection is not None
    w0 = starting_parameters(config().method, config().seed)
    np.testing.assert_array_equal(end.program, w0 if extended.selection["kept"] == "start" else end.w)


def test_cross_validation_scores_each_image_by_a_mapping_fitted_without_it() -> None:
    from barapi.run.strategies import new_mapping
    from barapi.method.selection import cross_validated_correct

    mapping, _ = new_mapping(MethodConfig(), 2, 60)
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    # Each image names its own label among 60 (so a readout fitted on it recalls it), none says anything of its class.
    dense = np.full((40, 60), 1e-4)
    dense[np.arange(40), rng.permutation(60)[:40]] = 1.0
    assert accuracy_of(mapping.fitted(dense, labels), dense, labels) == 1.0  # fitted on itself: perfect
    assert cross_validated_correct(mapping, dense, labels).mean() <= 0.6  # held out: chance
    separable = dense.copy()
    separable[:, 0] = np.where(labels == 0, 1.0, 1e-4)
    assert cross_validated_correct(mapping, separable, labels).all()


def accuracy_of(mapper, dense: np.ndarray, labels: np.ndarray) -> float:  # noqa: ANN001
    return float(np.mean(np.argmax(mapper.target_scores(dense), axis=1) == labels))


class ScoresAreAnswers:
    """A mapping whose answers are already the class scores: what is right is set by hand."""

    def fitted(self, dense: np.ndarray, labels: np.ndarray) -> ScoresAreAnswers:
        return self

    def target_scores(self, dense: np.ndarray) -> np.ndarray:
        return dense


@pytest.mark.parametrize(("start_right", "trained_right", "kept"), [(60, 50, "trained"), (70, 50, "start"), (50, 70, "trained")])
def test_the_start_is_kept_only_when_its_answers_are_significantly_better(start_right: int, trained_right: int, kept: str) -> None:
    """Of 100 images, those only one program gets right decide (a sign test): 50 against 40 is
    within a fair coin's 1.645 sd (10 < 1.645 · √90 = 15.6), 50 against 30 is not (20 > 14.7)."""
    from barapi.method.selection import Selection

    labels = np.repeat([0, 1], 50)
    def answers(right: np.ndarray) -> np.ndarray:
        return np.eye(2)[np.where(right, labels, 1 - labels)]
    start = np.arange(100) < start_right  # the first images right
    trained = np.arange(100) >= 100 - trained_right  # the last images right: the overlap is as small as it can be
    selection = Selection.between(6, ScoresAreAnswers(), labels, np.ones(3), answers(start), answers(trained))
    assert (selection.start_accuracy, selection.trained_accuracy) == (start_right / 100, trained_right / 100)
    assert ("start" if selection.kept_start is not None else "trained") == kept
