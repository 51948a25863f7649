"""The probe: a few of a run's candidates answered on its training images before the money, a
verdict on what they add to the images alone, and a run afterwards that pays nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import ProjectionModel

from barapi import api
from barapi.store import Store

# 4 classes of the digits, 10 images each: 40 training images; at 200 queries a probe (PROBE), it answers 5 of the run's 8 candidates.
PROBE = 200
SETTINGS = dict(provider="fake", dataset="digits:0,1,2,3", train_per_class=10, test_size=20, candidates=8, views=2,
                iterations=0, mapping="linear", labels_per_class=None, price_per_1k=1.5, seed=2)


@pytest.fixture(autouse=True)
def small_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("barapi.run.probe.PROBE_QUERIES", PROBE)


def test_a_probe_pays_for_a_few_candidates_on_the_training_images_and_the_run_after_it_pays_nothing_twice(tmp_path: Path) -> None:
    store = Store(tmp_path / "probed")
    probed = api.probe(store=store, classifier=ProjectionModel(), name="r", **SETTINGS)
    assert (probed.run, probed.candidates) == ("r-probe", 5) and probed.queries_paid == 5 * 40  # no test image
    assert probed.cost_usd == pytest.approx(5 * 40 * 1.5 / 1000)
    assert probed.adds == probed.api_gain["beyond_noise"] and probed.verdict in ("the API adds", "the API adds nothing beyond noise")
    assert probed.free_baseline == api.estimate(store=Store(tmp_path / "estimated"), classifier=ProjectionModel(), name="r", **SETTINGS).free_baseline
    assert store.get_run("r-probe").status == "probed"
    # The run it was for: estimated with the probe's answers cached, and paying for the rest only.
    after = api.train(store=store, classifier=ProjectionModel(), name="r", **SETTINGS)
    fresh = api.train(store=Store(tmp_path / "fresh"), classifier=ProjectionModel(), name="r", **SETTINGS)
    assert after.program_sha256 == fresh.program_sha256
    assert after.queries_paid == fresh.queries_paid - probed.queries_paid
    # The estimate counts the test images through both views; a run that serves the free views alone sends them through none.
    assert probed.full_run["queries"] == fresh.queries_paid + (2 - fresh.views) * 20 and probed.full_run["cost_usd"] <= probed.full_run["queries"] * 1.5 / 1000
    again = api.probe(store=store, classifier=ProjectionModel(), name="r", **SETTINGS)  # a probe run again reads its answers
    assert again.queries_paid == probed.queries_paid and again.api_gain == probed.api_gain


def test_the_cli_probe_says_its_verdict_and_what_the_full_run_costs(home: Path, fake_provider: None) -> None:
    from test_cli import invoke

    flags = ("--dataset", "digits:0,1", "--train-per-class", "20", "--test-size", "4", "--candidates", "8", "--views", "2", "--price-per-1k", "1.5")
    figures = json.loads(invoke("probe", *flags, "--name", "p", "--json").output.strip().splitlines()[-1])
    assert figures["candidates"] == 5 and figures["queries_paid"] == 5 * 40  # 200 queries of 40 training images
    human = invoke("probe", *flags, "--name", "p").output
    assert f"verdict: {figures['verdict']}; the full run: {figures['full_run']['queries']:,} queries" in human
    assert human.startswith("probe p-probe: 5 candidate programs, 200 queries paid")  # the second probe read the first's answers
    few = invoke("probe", *flags[:2], "--train-per-class", "5", *flags[4:], "--name", "few").output
    assert "too few training images to tell: some class has fewer than 10 training images" in few
    assert f"your images alone: {figures['free_baseline']['cv_accuracy']:.1%}" in human


def test_a_probe_takes_the_runs_first_candidates_and_no_more_than_it_has() -> None:
    from barapi.run.probe import probing

    portfolio = api.configure(**SETTINGS)
    assert probing(portfolio, 40).method.candidates == 5 and probing(portfolio, 20).method.candidates == 8  # 200 queries, or all 8
    one_program = api.configure(provider="fake", dataset="digits", iterations=20, mapping="frequency", price_per_1k=1.5)
    probed = probing(one_program, 150).method
    assert (probed.candidates, probed.views, probed.iterations, probed.mapping) == (2, 1, 0, "linear")  # the start and one more
