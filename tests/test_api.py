"""The Python API and the scikit-learn estimator: the same runs as the CLI's, from Python."""

from __future__ import annotations

import json
import pickle
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import barapi
from barapi.cli.app import app
from barapi.config import DataConfig, Geometry, MethodConfig, PredictionCap, RunConfig
from barapi.money import Pricing
from barapi.settings import SETTINGS

runner = CliRunner()
SMALL = {"dataset": "digits:0,1,2", "train_per_class": 4, "test_size": 6}


def cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def as_flags(settings: dict) -> list[str]:
    return [part for name, value in settings.items() for part in (SETTINGS[name].flag, str(value))]


@pytest.mark.parametrize("shape", [{}, {"iterations": 2, "q": 2, "batch_size": 4}, {"views": 2, "candidates": 4}])
def test_a_cli_run_and_a_python_run_with_equal_settings_serve_the_same_program(home: Path, fake_provider: None, shape: dict) -> None:
    settings = SMALL | shape
    from_cli = cli("train", "--name", "from-cli", *as_flags(settings))
    from_python = barapi.train(name="from-python", **settings)
    assert from_python.program_sha256 == from_cli["program_sha256"]
    assert from_python.result.queries == from_cli["queries"] and from_python.views == from_cli["views"]
    # The default shape is decided by the library: through the stand-in's 60 labels, a portfolio.
    assert from_python.views == shape.get("views", 8 if not shape else 1)


def test_python_verbs_estimate_train_predict_export_load_resume(home: Path, fake_provider: None, tmp_path: Path) -> None:
    figures = barapi.estimate(**SMALL, iterations=2, q=2, batch_size=4)
    run = barapi.train(**SMALL, iterations=2, q=2, batch_size=4, name="verbs", on_progress=(seen := []).append)
    assert run.status == "completed" and run.result.queries == figures.as_json()["queries"]["total"]
    assert {p.phase for p in seen} >= {"mapping", "training", "done"}
    assert [r.name for r in barapi.runs()] == ["verbs"] and barapi.load("verbs").program_sha256 == run.program_sha256
    images = np.asarray(Image_digits()[:5])
    predicted = run.predict(images)
    assert predicted.shares.shape == (5, 3) and np.allclose(predicted.shares.sum(axis=1), 1)
    assert set(predicted.labels) <= {"0", "1", "2"}
    exported = barapi.load(tmp_path / "out") if run.export(tmp_path / "out") else None
    assert exported.program_sha256 == run.program_sha256
    np.testing.assert_allclose(exported.predict(images).shares, predicted.shares)  # the same answers, from the cache
    assert exported.predict(images).queries_paid == 0
    before = run.program_sha256
    further = barapi.resume("verbs", iterations=3)
    assert further.iterations == 3 and further.program_sha256 != before and run.iterations == 3  # a Run reads the store live


def Image_digits() -> list:
    from sklearn.datasets import load_digits

    return list((load_digits().images * 255 / 16).astype(np.uint8))


def test_every_config_field_is_one_setting_reachable_from_flags_and_toml(home: Path, fake_provider: None, tmp_path: Path) -> None:
    # Derived, never given: the provider (its own flags), and what a run records about itself.
    derived = {"provider", "data", "method", "geometry", "pricing", "prediction_cap", "shape_by_api", "views_asked", "per_1k_images",
               "throughput_measured"}
    declared = {s.path[-1] for s in SETTINGS.values()}
    for model in (RunConfig, DataConfig, MethodConfig, Geometry, Pricing, PredictionCap):
        assert set(model.model_fields) - declared - derived == set(), model
    help_text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "300"}).output
    assert all(s.flag in help_text for s in SETTINGS.values())
    # Every method setting, from a TOML file, lands in the run's config.
    values = {"focal_gamma": 1.5, "relative_scores": False, "remap_every": 3, "remap_memory": 0.5, "readout_l2": 0.1, "init_scale": 0.01,
              "canvas_size": 200, "split_seed": 7}
    (tmp_path / "run.toml").write_text("".join(f"{k.replace('_', '-')} = {json.dumps(v)}\n" for k, v in values.items()))
    assert tomllib.loads((tmp_path / "run.toml").read_text())
    cli("train", "--config", str(tmp_path / "run.toml"), "--name", "toml", "--iterations", "0", *as_flags(SMALL))
    config = barapi.load("toml").config
    got = config.model_dump()
    flat = {**got["method"], **got["method"]["geometry"], **got["data"]}
    assert {k: flat[k] for k in values} == values


class TestReprogrammer:
    X = np.asarray(Image_digits()[:90])

    @staticmethod
    def y(n: int) -> np.ndarray:
        from sklearn.datasets import load_digits

        return np.array(["zero", "one", "two"])[load_digits().target[:n] % 3]

    def test_fit_predict_score_and_the_run_it_leaves(self, home: Path, fake_provider: None) -> None:
        model = barapi.Reprogrammer(views=2, candidates=4, seed=1, free_views="none").fit(self.X[:60], self.y(60))  # the API's views served
        assert list(model.classes_) == ["one", "two", "zero"]
        proba = model.predict_proba(self.X[60:])
        assert proba.shape == (30, 3) and np.allclose(proba.sum(axis=1), 1)
        assert set(model.predict(self.X[60:])) <= set(model.classes_)
        assert 0 <= model.score(self.X[60:], self.y(90)[60:]) <= 1
        run = barapi.load(model.run_name_)
        assert run.status == "completed" and run.config.data.test_size == 0 and run.views == 2
        assert barapi.resume(model.run_name_).status == "completed"  # a fit is a run like any other

    def test_clone_pipeline_pickle_and_cross_validation(self, home: Path, fake_provider: None) -> None:
        from sklearn.base import clone
        from sklearn.model_selection import cross_val_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer

        model = barapi.Reprogrammer(views=2, candidates=4, budget=5.0)
        twin = clone(model)
        assert twin.get_params() == model.get_params() and twin is not model
        assert twin.set_params(views=3).views == 3 and model.views == 2
        with pytest.raises(TypeError, match="unknown parameter"):
            barapi.Reprogrammer(colour="blue")
        pipeline = make_pipeline(FunctionTransformer(lambda x: 255 - x), barapi.Reprogrammer(views=2, candidates=4)).fit(self.X[:45], self.y(45))
        assert pipeline.predict(self.X[45:50]).shape == (5,)
        fitted = barapi.Reprogrammer(views=2, candidates=4).fit(self.X[:45], self.y(45))
        restored = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_array_equal(restored.predict_proba(self.X[45:60]), fitted.predict_proba(self.X[45:60]))
        scores = cross_val_score(barapi.Reprogrammer(views=2, candidates=4), self.X[:60], self.y(60), cv=2)
        assert scores.shape == (2,) and len(barapi.runs()) == 4  # every fit a run: the pipeline's, one, and cross-validation's two

    def test_a_second_fit_on_overlapping_images_pays_only_for_the_new_ones(self, home: Path, fake_provider: None, tmp_path: Path) -> None:
        paid = lambda model: barapi.load(model.run_name_).queries_paid  # noqa: E731
        first = barapi.Reprogrammer(views=2, candidates=4).fit(self.X[:40], self.y(40))
        second = barapi.Reprogrammer(views=2, candidates=4).fit(self.X[:60], self.y(60))
        fresh = barapi.Reprogrammer(views=2, candidates=4, home=str(tmp_path / "elsewhere")).fit(self.X[:60], self.y(60))
        assert paid(first) > 0 and paid(second) == fresh_paid(fresh, tmp_path) - paid(first)
        again = barapi.Reprogrammer(views=2, candidates=4).fit(self.X[:60], self.y(60))
        assert paid(again) == 0


def fresh_paid(model: "barapi.Reprogrammer", tmp_path: Path) -> int:
    from barapi.store import Store

    return Store(tmp_path / "elsewhere").spent(model.run_name_)[0]


def test_the_estimate_says_what_the_images_alone_reach_before_any_query(home: Path, fake_provider: None) -> None:
    from barapi.method.free import cross_validated_accuracy, free_block

    figures = cli("estimate", "--dataset", "digits", "--train-per-class", "20")
    assert figures["free_baseline"]["views"] == ["pixels"] and figures["free_baseline"]["cv_accuracy"] > 0.8
    assert figures["queries"]["cached"] == 0 and barapi.runs() == []  # nothing sent, nothing recorded
    human = runner.invoke(app, ["estimate", "--dataset", "digits", "--train-per-class", "20"])
    assert f"your images alone: {figures['free_baseline']['cv_accuracy']:.1%} from their pixels" in human.output
    # Labels that say nothing about the pixels: the cross-validated figure falls to chance.
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(200, 64))
    assert cross_validated_accuracy([free_block(noise)], np.arange(200) % 4, 4) < 0.4
