"""A portfolio of programs read by one readout: priced both ways, resumed bit-identically, chosen
on the training images only, served by eval, predict and export alike."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from fakes import ProjectionModel
from pydantic import ValidationError
from test_trainer import config as small_config

from barapi.run.artifact import LearnedProgram
from barapi.config import DataConfig, RunConfig
from barapi.errors import ConfigError, ProviderError
from barapi.run.evaluation import evaluate_images
from barapi.run.planning import estimate_run, run_summary, shaped
from barapi.method.portfolio import CrossValidation, fit_dual, forward_selection, standardised
from barapi.method.program import program_sha256, starting_parameters
from barapi.method.readout import LinearReadout, features
from barapi.store import Store
from barapi.store.schema import LedgerEntry
from sqlmodel import select
from barapi.run.trainer import Trainer

N_TRAIN, N_TEST = 30, 20  # digits: 3 per class; 20 held out


def config(candidates: int = 6, views: int = 3, **changes: object) -> RunConfig:
    base = small_config(iterations=0, mapping="linear", labels_per_class=None, candidates=candidates, views=views)
    return base.model_copy(update={"data": DataConfig(train_per_class=3, test_size=N_TEST)} | changes)


def test_a_portfolio_costs_what_was_estimated_both_for_training_and_per_prediction(tmp_path: Path) -> None:
    store = Store(tmp_path)
    planned = estimate_run(config(), ProjectionModel(), store)
    assert (planned.label_mapping, planned.candidates, planned.training, planned.readout) == (N_TRAIN, 5 * N_TRAIN, 0, 0)
    assert planned.evaluation == 3 * N_TEST and planned.as_json()["queries_per_prediction"] == 3
    assert planned.as_json()["usd_per_1k_predictions"] == pytest.approx(3 * 1.0)  # $1 per 1,000 images, 3 images a prediction
    result = Trainer(config(), ProjectionModel(), store).run()
    assert result.queries == result.queries_paid == planned.total  # nothing asked twice, nothing unestimated
    assert (result.views, result.candidates_paid, result.as_json()["queries_per_prediction"]) == (3, 6, 3)
    shown = run_summary(store, store.get_run("run"))
    assert (shown["views"], shown["queries_per_prediction"], shown["program_sha256"]) == (3, 3, result.program_sha256)


def test_a_portfolio_killed_while_paying_for_candidates_resumes_bit_identically(tmp_path: Path) -> None:
    reference = Trainer(config(), ProjectionModel(), Store(tmp_path / "ref")).run()
    crashed = Store(tmp_path / "crashed")
    with pytest.raises(ProviderError):
        Trainer(config(), ProjectionModel(fail_after=20), crashed).run()  # 4 images a call: mid-candidates
    resumed = Trainer(config(), ProjectionModel(), crashed).run()
    assert (resumed.program_sha256, resumed.test_accuracy, resumed.queries_paid, resumed.api_gain) == (
        reference.program_sha256, reference.test_accuracy, reference.queries_paid, reference.api_gain)


def test_a_portfolio_says_what_its_views_add_to_the_images_alone_and_what_that_costs(tmp_path: Path) -> None:
    from barapi.data import run_split
    from barapi.method.free import cross_validated_accuracy, free_block, pixels

    settings = config().model_copy(update={"data": DataConfig(train_per_class=10, test_size=N_TEST)})  # 10 a class: a gain to tell
    store = Store(tmp_path)
    result = Trainer(settings, ProjectionModel(), store).run()
    split = run_split(settings)
    alone = cross_validated_accuracy([free_block(pixels(split.x_train))], split.y_train, split.n_classes)
    assert result.free_baseline == {"views": ["pixels"], "cv_accuracy": round(alone, 4)}  # what estimate said before any query
    gain = result.api_gain
    assert gain["free_cv_accuracy"] == pytest.approx(alone, abs=1e-4)  # the same folds, the same readout
    assert gain["cv_accuracy"] == pytest.approx(gain["paid_cv_accuracy"] - gain["free_cv_accuracy"], abs=2e-4)
    assert 0 < gain["se"] < 0.2 and gain["usd_per_1k_predictions"] == pytest.approx(3.0)  # 3 views at $1.00/1k
    # Read from the checkpoint afterwards, not computed again (a later run of more steps keeps it).
    again = Trainer(settings, ProjectionModel(), store).run()
    assert again.api_gain == gain and again.queries_paid == result.queries_paid
    # Below 10 images of a class the standard error is too wide to decide by: none is claimed.
    assert Trainer(config(), ProjectionModel(), Store(tmp_path / "few")).run().api_gain is None


def test_the_cli_says_what_the_api_adds_and_at_what_price(home: Path, fake_provider: None) -> None:
    from test_cli import invoke

    flags = ("--dataset", "digits:0,1", "--train-per-class", "10", "--test-size", "4", "--candidates", "4", "--views", "2", "--price-per-1k", "1.5")
    trained = last_json(invoke("train", *flags, "--name", "g", "--json").output)
    human = invoke("train", *flags, "--name", "h").output  # the same run again: the same figures, from the cache
    gain, alone = trained["api_gain"], trained["free_baseline"]["cv_accuracy"]
    assert gain["usd_per_1k_predictions"] == pytest.approx(3.0) and gain["free_cv_accuracy"] == pytest.approx(alone, abs=1e-4)
    verdict = "add" if gain["beyond_noise"] else "add nothing beyond noise:"
    assert (f"what the API adds: your images alone reach {alone:.1%} (their pixels); the API's answers {verdict} "
            f"{100 * gain['cv_accuracy']:+.1f} ± {100 * gain['se']:.1f} points (cross-validated on training images their choice did not see), "
            "for $3.00 per 1,000 predicted images") in human


@pytest.mark.parametrize("family", ["bands", "casts", "mixed"])
def test_each_candidate_family_draws_its_own_programs_and_the_same_again_on_resume(tmp_path: Path, family: str) -> None:
    from barapi.method.portfolio import CANDIDATES

    start = np.zeros((16, 16, 3))
    drawn = [CANDIDATES[family](start, 7, k) for k in range(1, 7)]
    assert all(np.array_equal(w, CANDIDATES[family](start, 7, k)) for k, w in enumerate(drawn, 1))  # from (seed, k) alone
    assert len({w.tobytes() for w in drawn}) == 6
    # Not the random family's programs (mixed takes every third from it).
    assert sum(not np.array_equal(w, CANDIDATES["random"](start, 7, k)) for k, w in enumerate(drawn, 1)) >= 4
    run = config()
    run = run.model_copy(update={"method": run.method.model_copy(update={"candidate_family": family})})
    reference = Trainer(run, ProjectionModel(), Store(tmp_path / "ref")).run()
    crashed = Store(tmp_path / "crashed")
    with pytest.raises(ProviderError):
        Trainer(run, ProjectionModel(fail_after=20), crashed).run()
    resumed = Trainer(run, ProjectionModel(), crashed).run()
    assert (resumed.program_sha256, resumed.queries_paid) == (reference.program_sha256, reference.queries_paid)
    with pytest.raises(ValidationError, match="unknown candidate_family 'noise'"):
        run.method.model_validate(run.method.model_dump() | {"candidate_family": "noise"})


def test_candidates_from_an_earlier_run_are_its_programs_as_they_were_when_this_run_started(tmp_path: Path) -> None:
    from barapi.method.portfolio import CANDIDATES, PortfolioSearch
    from barapi.method.program import starting_parameters
    from barapi.run.checkpoint import load_state

    def earlier(store: Store, candidates: int = 4, views: int = 2) -> None:
        Trainer(config(candidates=candidates, views=views, name="earlier", seed=5), ProjectionModel(), store).run()

    later = config(candidates=5, views=2, name="later", candidates_from=["earlier"])
    reference_store = Store(tmp_path / "ref")
    earlier(reference_store)
    reference = Trainer(later, ProjectionModel(), reference_store).run()
    store = Store(tmp_path / "crashed")
    earlier(store)
    views_then = load_state(store, "earlier").views
    with pytest.raises(ProviderError):
        Trainer(later, ProjectionModel(fail_after=12), store).run()  # the earlier views are cached; killed in the third candidate
    earlier(store, candidates=8, views=3)  # the earlier run grows meanwhile: its views change
    resumed = Trainer(later, ProjectionModel(), store)
    result = resumed.run()
    assert (result.program_sha256, result.queries_paid) == (reference.program_sha256, reference.queries_paid)
    np.testing.assert_array_equal(load_state(store, "later").arrays["portfolio.earlier"], views_then)
    # The start, the earlier run's two views, then the family's programs numbered from 1.
    search, start = PortfolioSearch(2, 10, "random", views_then), starting_parameters(later.method, later.seed)
    expected = [start, *views_then, CANDIDATES["random"](start, later.seed, 1), CANDIDATES["random"](start, later.seed, 2)]
    assert all(np.array_equal(search.candidate(k, start, later.seed), w) for k, w in enumerate(expected))
    coarse = later.model_copy(update={"name": "coarse", "method": later.method.model_copy(
        update={"geometry": later.method.geometry.model_copy(update={"program_resolution": 8})})})
    with pytest.raises(ConfigError, match="same --program-resolution"):
        Trainer(coarse, ProjectionModel(), store).run()
    with pytest.raises(ValidationError, match="--candidates-from gives a portfolio"):
        RunConfig.model_validate(small_config().model_dump() | {"candidates_from": ["earlier"]})


def test_more_candidates_and_views_later_reuse_every_answer_already_paid(tmp_path: Path) -> None:
    store = Store(tmp_path / "grown")
    first = Trainer(config(candidates=4, views=2), ProjectionModel(), store).run()
    grown = Trainer(config(candidates=8, views=3), ProjectionModel(), store).run()
    fresh = Trainer(config(candidates=8, views=3), ProjectionModel(), Store(tmp_path / "fresh")).run()
    assert (grown.program_sha256, grown.test_accuracy) == (fresh.program_sha256, fresh.test_accuracy)
    assert first.queries_paid == 4 * N_TRAIN + 2 * N_TEST
    # The second run paid only the 4 new candidates and the test answers of views it had not served.
    assert 4 * N_TRAIN <= grown.queries_paid - first.queries_paid <= 4 * N_TRAIN + 3 * N_TEST
    assert grown.queries_paid - first.queries_paid < fresh.queries_paid


def refined(iterations: int = 6, **changes: object) -> RunConfig:
    """3 views of 6 candidates, then ``iterations`` zeroth-order steps (4 images × 3 points each)."""
    run = config(**changes)
    return run.model_copy(update={"method": run.method.model_copy(update={"iterations": iterations})})


def test_refined_views_cost_what_was_estimated_and_each_moves_in_its_own_block(tmp_path: Path) -> None:
    from barapi.method.portfolio import Portfolio, refinement_blocks
    from barapi.run.checkpoint import load_state

    chosen = Trainer(config(), ProjectionModel(), Store(tmp_path / "chosen")).run()
    store = Store(tmp_path / "refined")
    planned = estimate_run(refined(), ProjectionModel(), store)
    assert (planned.training, planned.readout) == (6 * 4 * 3, 3 * N_TRAIN)  # 6 steps; each view's training images read again
    result = Trainer(refined(), ProjectionModel(), store).run()
    # Each block's first step reads its view's answers on the batch from the candidates' pass.
    assert result.queries_paid == planned.total - 3 * 4
    assert (result.iterations, result.views, result.status) == (6, 3, "completed")
    before = Portfolio.restored(load_state(Store(tmp_path / "chosen"), "run").arrays)
    after = Portfolio.restored(load_state(store, "run").arrays)
    np.testing.assert_array_equal(after.chosen, before.chosen)  # the same views, refined
    assert all(not np.array_equal(a, b) for a, b in zip(after.programs, before.programs, strict=True))
    assert result.program_sha256 != chosen.program_sha256
    np.testing.assert_array_equal(refinement_blocks(6, 3), [0, 2, 4, 6])
    np.testing.assert_array_equal(refinement_blocks(2, 3), [0, 0, 1, 2])  # fewer steps than views: the first view keeps its program
    two = Trainer(refined(2, name="two"), ProjectionModel(), Store(tmp_path / "two")).run()
    kept = Portfolio.restored(load_state(Store(tmp_path / "two"), "two").arrays)
    assert np.array_equal(kept.programs[0], before.programs[0]) and not np.array_equal(kept.programs[1], before.programs[1])
    assert two.queries_paid == estimate_run(refined(2, name="two"), ProjectionModel(), Store(tmp_path / "two-estimate")).total - 2 * 4


# Calls of 4 images: the label mapping and candidates take 48; view 0's steps end at 53, its
# training images are read again by 61, view 1's steps run to 66.
@pytest.mark.parametrize("crash_after", [51, 57, 64])
def test_a_portfolio_killed_while_refining_resumes_bit_identically(tmp_path: Path, crash_after: int) -> None:
    reference = Trainer(refined(), ProjectionModel(), Store(tmp_path / "ref")).run()
    store = Store(tmp_path / "crashed")
    with pytest.raises(ProviderError):
        Trainer(refined(), ProjectionModel(fail_after=crash_after), store).run()
    resumed = Trainer(refined(), ProjectionModel(), store).run()
    assert (resumed.program_sha256, resumed.test_accuracy, resumed.queries_paid) == (
        reference.program_sha256, reference.test_accuracy, reference.queries_paid)


def test_a_refinement_the_budget_stops_serves_the_finished_views_and_resumes_as_if_never_stopped(tmp_path: Path) -> None:
    from barapi.method.portfolio import Portfolio
    from barapi.run.checkpoint import load_state

    reference = Trainer(refined(), ProjectionModel(), Store(tmp_path / "ref")).run()
    chosen = Trainer(config(), ProjectionModel(), Store(tmp_path / "chosen")).run()
    store = Store(tmp_path / "short")
    # 180 for the candidates, 20 for view 0's steps, 30 to read it again, 8 for view 1's first
    # step; kept aside: 30 for view 1's read and 3 × 20 for the test set.
    stopped = Trainer(refined(budget_usd=(238 + 30 + 60 + 5) / 1000), ProjectionModel(), store).run()
    assert (stopped.status, stopped.iterations) == ("budget_exhausted", 3)
    assert stopped.test_accuracy is not None and stopped.queries_paid == 238 + 60
    served = Portfolio.restored(load_state(store, "run").arrays).programs
    unrefined = Portfolio.restored(load_state(Store(tmp_path / "chosen"), "run").arrays).programs
    assert not np.array_equal(served[0], unrefined[0])  # view 0's block ended: refined
    np.testing.assert_array_equal(served[1:], unrefined[1:])  # view 1's stopped mid-block: served as chosen
    assert stopped.program_sha256 not in (reference.program_sha256, chosen.program_sha256)
    resumed = Trainer(refined(), ProjectionModel(), store).run()
    assert (resumed.program_sha256, resumed.test_accuracy) == (reference.program_sha256, reference.test_accuracy)


def test_refined_views_are_not_chosen_again_or_laid_out_anew_on_resume(tmp_path: Path) -> None:
    store = Store(tmp_path)
    Trainer(refined(), ProjectionModel(), store).run()
    with pytest.raises(ConfigError, match="--candidates-from run"):
        Trainer(refined(candidates=8), ProjectionModel(), store).run()
    with pytest.raises(ConfigError, match="--iterations 6"):
        Trainer(refined(9), ProjectionModel(), store).run()
    # A portfolio that was never refined can be: its views are refined from where they were chosen.
    Trainer(config(name="later"), ProjectionModel(), store).run()
    assert Trainer(refined(3, name="later"), ProjectionModel(), store).run().iterations == 3


def test_a_budget_reserves_the_test_set_through_every_view(tmp_path: Path) -> None:
    needed = N_TRAIN + 3 * N_TEST  # the label mapping's pass, then the test set through 3 views
    with pytest.raises(ConfigError, match="--views"):
        Trainer(config(budget_usd=(needed - 1) / 1000), ProjectionModel(), Store(tmp_path / "refused")).run()
    store = Store(tmp_path / "short")
    stopped = Trainer(config(budget_usd=(needed + 2 * N_TRAIN) / 1000), ProjectionModel(), store).run()
    assert stopped.status == "budget_exhausted" and stopped.candidates_paid == 3
    assert stopped.test_accuracy is not None and stopped.queries_paid == needed + 2 * N_TRAIN


def test_export_and_eval_serve_the_portfolio_as_the_run_measured_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    result = Trainer(config(), ProjectionModel(), store).run()
    trainer = Trainer(config(), ProjectionModel(), store, record_status=False)
    truth, predicted = evaluate_images(trainer)
    assert float(np.mean(truth == predicted)) == result.test_accuracy
    learned = LearnedProgram.from_run(store, "run", trainer.split.classes)
    assert learned.views == 3 and learned.sha256 == result.program_sha256
    learned.save(tmp_path / "export", trainer.split.x_test)
    assert {"view-2.png", "view-3.png"} <= {p.name for p in (tmp_path / "export").iterdir()}
    assert json.loads((tmp_path / "export" / "mapping.json").read_text())["views"] == 3
    loaded = LearnedProgram.load(tmp_path / "export")
    prediction = loaded.predict(ProjectionModel(), Store(tmp_path / "elsewhere"), trainer.split.x_test, budget_usd=None, price_per_1k=1.0, ledger=None)
    assert np.array_equal(np.argmax(prediction.shares, axis=1), predicted)
    assert prediction.queries_paid == 3 * N_TEST  # every image through every view
    mapping = json.loads((tmp_path / "export" / "mapping.json").read_text())
    mapping["classes"] = mapping["classes"][:-1]  # an export edited by hand: its readout reads out one class more
    (tmp_path / "export" / "mapping.json").write_text(json.dumps(mapping))
    with pytest.raises(ConfigError, match="the readout does not match .* and 9 classes: export the run again"):
        LearnedProgram.load(tmp_path / "export")


def test_one_candidate_and_one_view_is_the_single_program_method(tmp_path: Path) -> None:
    single = small_config(iterations=0, mapping="linear", labels_per_class=None)
    assert not single.method.is_portfolio
    store = Store(tmp_path)
    planned = estimate_run(single, ProjectionModel(), store)
    result = Trainer(single, ProjectionModel(), store).run()
    assert (result.views, result.candidates_paid, planned.candidates) == (1, None, 0)
    assert result.queries == planned.total  # no candidate was paid for
    assert result.program_sha256 == program_sha256(starting_parameters(single.method, single.seed))  # no step: the start


def test_choosing_the_views_never_reads_the_test_labels(tmp_path: Path) -> None:
    from barapi.data import run_split
    from barapi.run.checkpoint import load_state

    chosen = config(candidates=6, views=3)
    split = run_split(chosen)
    relabelled = dataclasses.replace(split, y_test=np.roll(split.y_test, 1))
    assert not np.array_equal(relabelled.y_test, split.y_test)
    as_given = Trainer(chosen, ProjectionModel(), Store(tmp_path / "a"), split=split).run()
    shuffled = Trainer(chosen, ProjectionModel(), Store(tmp_path / "b"), split=relabelled).run()
    assert (shuffled.program_sha256, shuffled.validation_loss) == (as_given.program_sha256, as_given.validation_loss)
    np.testing.assert_array_equal(load_state(Store(tmp_path / "b"), chosen.name).views, load_state(Store(tmp_path / "a"), chosen.name).views)
    assert shuffled.test_accuracy != as_given.test_accuracy  # the test labels did change what was measured


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"candidates": 2, "views": 3}, "raise --candidates"),
    ({"candidates": 4, "views": 2, "mapping": "frequency"}, "--mapping linear"),
])
def test_a_portfolio_that_cannot_run_is_refused_with_the_fix(settings: dict, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        small_config(**({"iterations": 0, "mapping": "linear"} | settings))


def test_forward_selection_takes_the_view_that_carries_the_labels_first() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 12)
    noise = [rng.dirichlet(np.ones(5), size=len(labels)) for _ in range(4)]
    informative = np.full((len(labels), 5), 0.05)
    informative[np.arange(len(labels)), labels] = 0.8
    views = [standardised(features(v)) for v in (*noise[:2], informative, *noise[2:])]
    chosen = forward_selection([v @ v.T for v in views], 2, CrossValidation(labels, 3))
    assert chosen[0] == 2 and len(set(chosen)) == 2


def test_the_dual_fit_is_the_readouts_fit() -> None:
    """CrossValidation fits in the dual (weights = Zᵀ·A): the same logits as LinearReadout.fit."""
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(2), 10)
    dense = rng.dirichlet(np.ones(30), size=20)  # more features than images, as with 1,000 labels
    readout = LinearReadout.fit(dense, labels, 2, l2=0.1, steps=300)
    z = np.hstack([(features(dense) - readout.mean) / readout.scale, np.ones((20, 1))])
    a = fit_dual(z @ z.T, labels, 2, 0.1, 300)
    np.testing.assert_allclose(z @ z.T @ a, z @ readout.weights, atol=1e-8)


PORTFOLIO_FLAGS = ("--dataset", "digits", "--train-per-class", "3", "--test-size", "10", "--candidates", "4", "--views", "2",
                   "--price-per-1k", "1.5")


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_the_cli_prices_predictions_and_caps_the_views_by_it(home: Path, fake_provider: None) -> None:
    from test_cli import assert_one_line_error, invoke

    figures = last_json(invoke("estimate", *PORTFOLIO_FLAGS, "--json").output)
    assert figures["queries"]["candidates"] == 3 * 30 and figures["queries"]["training"] == 0
    assert (figures["queries_per_prediction"], figures["usd_per_1k_predictions"]) == (2, 3.0)
    human = invoke("estimate", *PORTFOLIO_FLAGS)
    assert "each prediction: 2 queries → $3.00 per 1,000 predicted images" in human.output
    # A cap lowers the views nobody asked for, and refuses those asked for that it cannot pay.
    capped = last_json(invoke("estimate", "--candidates", "48", "--max-usd-per-1k-predictions", "6", "--price-per-1k", "1.5", "--json").output)
    assert capped["queries_per_prediction"] == 4
    assert_one_line_error(invoke("estimate", *PORTFOLIO_FLAGS, "--max-usd-per-1k-predictions", "2"), "--views 1 or fewer")
    assert_one_line_error(invoke("estimate", "--views", "3", "--candidates", "2"), "raise --candidates")
    # An hourly price is measured before the cap applies: at $1,000 an endpoint-hour, no view fits
    # $0.001 per 1,000 predictions below 277,000 images/s.
    hourly = invoke("estimate", *PORTFOLIO_FLAGS[:-2], "--price-per-hour", "1000", "--max-usd-per-1k-predictions", "0.001")
    assert_one_line_error(hourly, "not even one view fits")


def test_a_run_that_leaves_its_shape_open_is_fitted_to_the_apis_label_count(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_cli import invoke

    provider = {"model": ProjectionModel(vocabulary=5)}
    monkeypatch.setattr("barapi.api.classifier_for", lambda config: provider["model"])
    flags = ("--dataset", "digits", "--train-per-class", "3", "--test-size", "10", "--price-per-1k", "1.5")
    few = last_json(invoke("estimate", *flags, "--json").output)
    # 5 labels: 8 views of cosine bands, 48 candidates (10,000 queries pay for more at 30 images).
    assert (few["fitted_to_labels"], few["queries_per_prediction"], few["queries"]["candidates"], few["queries"]["training"]) == (5, 8, 47 * 30, 0)
    assert "shape: 8 views chosen of 48 candidate programs, the default for an API of 5 labels" in invoke("estimate", *flags).output
    # A flag of the one program's method, or --views, says what the user wants.
    assert last_json(invoke("estimate", *flags, "--iterations", "5", "--json").output)["fitted_to_labels"] is None
    assert last_json(invoke("estimate", *flags, "--views", "1", "--json").output)["queries_per_prediction"] == 1
    # 200 labels: the start and one candidate, both served, no step.
    provider["model"] = ProjectionModel(vocabulary=200)
    many = last_json(invoke("estimate", *flags, "--json").output)
    assert (many["fitted_to_labels"], many["queries_per_prediction"], many["queries"]["candidates"], many["queries"]["training"]) == (200, 2, 30, 0)
    assert "shape: 2 views chosen of 2 candidate programs, the default for an API of 200 labels (bench/results/value.md)" in invoke("estimate", *flags).output
    # Labels not published: the first batch tells their count; it is booked on the run and cached,
    # so the run pays once for each image.
    provider["model"] = ProjectionModel(vocabulary=5, published=False)
    trained = last_json(invoke("train", *flags, "--name", "open", "--json").output)
    assert (trained["views"], trained["candidates_paid"]) == (8, 48)
    with Store(home).session() as session:
        paid = session.exec(select(LedgerEntry.image_key).where(LedgerEntry.run == "open", LedgerEntry.kind == "paid")).all()
    assert len(paid) == len(set(paid)) == trained["queries_paid"] and trained["queries_cached"] >= 16


def test_the_default_shape_by_kind_of_api() -> None:
    config = small_config()
    many = shaped(config, 1000, 100).method  # the start and one candidate, both served, no step
    assert (many.views, many.candidates, many.iterations) == (2, 2, 0) and many.model_copy(update={"views": 1, "candidates": 1, "iterations": 6}) == config.method
    for labels, images, candidates in ((5, 100, 48), (10, 500, 20), (2, 5000, 16)):
        method = shaped(config, labels, images).method
        assert (method.views, method.candidates, method.candidate_family, method.iterations) == (8, candidates, "bands", 0)


def test_train_export_predict_and_resume_know_the_views(home: Path, fake_provider: None, tmp_path: Path) -> None:
    from test_cli import assert_one_line_error, digit_files, invoke

    trained = last_json(invoke("train", *PORTFOLIO_FLAGS, "--name", "p", "--json").output)
    assert (trained["views"], trained["queries_per_prediction"]) == (2, 2)
    human = invoke("train", *PORTFOLIO_FLAGS, "--name", "q", "--max-usd-per-1k-predictions", "3").output
    assert "the portfolio: 2 view(s) chosen of 4 candidate programs (cross-validated log-loss" in human
    assert "each prediction sends 2 queries: $3.00 per 1,000 predicted images" in human and "train accuracy" not in human
    out = tmp_path / "export"
    assert invoke("export", "p", "--out", str(out)).exit_code == 0
    with np.load(out / "program.npz") as program:
        assert program["programs"].shape == (2, 16, 16, 3)
    images = digit_files(tmp_path / "new")
    by_run = invoke("predict", "p", *map(str, images))
    assert f"{2 * len(images)} queries paid" in by_run.output  # every image through both views
    by_export = [last_json(line) for line in invoke("predict", "--program", str(out), *map(str, images), "--json").output.strip().splitlines()]
    assert [p["class"] for p in by_export] == [line.split(": ")[1].split(" (")[0] for line in by_run.output.splitlines() if line.startswith(str(tmp_path))]
    grown = last_json(invoke("resume", "p", "--candidates", "6", "--views", "3", "--json").output)
    assert (grown["views"], grown["candidates_paid"]) == (3, 6)
    assert_one_line_error(invoke("resume", "q", "--views", "3"), "--views 2 or fewer")  # the run's cap still holds
    seeded = last_json(invoke("train", *PORTFOLIO_FLAGS, "--name", "s", "--seed", "3", "--candidates-from", "p", "--json").output)
    assert (seeded["views"], seeded["candidates_paid"]) == (2, 4)
    assert_one_line_error(invoke("train", *PORTFOLIO_FLAGS, "--name", "t", "--candidates-from", "ghost"), "'ghost'")
    assert grown["queries_paid"] - trained["queries_paid"] <= 2 * 30 + 3 * 10  # the new candidates; test answers of new views


def test_the_cli_refines_a_portfolios_views_and_says_what_its_steps_did(home: Path, fake_provider: None) -> None:
    from test_cli import assert_one_line_error, invoke

    steps = ("--iterations", "4", "--batch-size", "5", "--q", "2")
    planned = last_json(invoke("estimate", *PORTFOLIO_FLAGS, *steps, "--json").output)["queries"]
    assert (planned["training"], planned["readout"]) == (4 * 5 * 5, 2 * 30)  # two-sided q = 2: 5 points a step; each view read again
    human = invoke("train", *PORTFOLIO_FLAGS, *steps, "--name", "r").output
    assert "after 4 iterations" in human and "the portfolio: 2 view(s) chosen of 4 candidate programs" in human
    assert "the last refined view's steps: signal-to-noise" in human and "at these 2 steps" in human
    # A portfolio chosen without steps is refined later by resume; refined views are not re-chosen.
    chosen = last_json(invoke("train", *PORTFOLIO_FLAGS, "--name", "p", "--json").output)
    refined = last_json(invoke("resume", "p", "--iterations", "4", "--json").output)
    assert (refined["iterations"], refined["views"]) == (4, 2) and refined["program_sha256"] != chosen["program_sha256"]
    assert_one_line_error(invoke("resume", "p", "--candidates", "6"), "--candidates-from p")
    assert_one_line_error(invoke("resume", "p", "--iterations", "6"), "laid out for --iterations 4")
    again = last_json(invoke("resume", "p", "--json").output)  # the refusals left the run as it was
    assert (again["status"], again["program_sha256"], again["queries_paid"]) == ("completed", refined["program_sha256"], refined["queries_paid"])
