"""Free views beside paid ones (barapi.method.views, barapi.method.joint): named once, a user's own
ONNX network among them; where the API adds nothing beyond noise the free readout is served and a
prediction sends no query; where it adds, its views are read beside the pixels; eval, export and
predict --program compute the free views locally and an export names what it needs."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fakes import ProjectionModel
from PIL import Image
from test_trainer import config as small_config

from barapi.classifier import NULL_METER, Meter, Scores
from barapi.config import DataConfig, MethodConfig, RunConfig
from barapi.data import run_split
from barapi.errors import ConfigError
from barapi.method.joint import stacked_readout
from barapi.method.views import LocalNetwork, check_identity, free_features, free_views
from barapi.run.artifact import LearnedProgram
from barapi.run.evaluation import evaluate_run
from barapi.run.trainer import Trainer
from barapi.store import Store

N_TEST = 40


def config(**method: object) -> RunConfig:
    """The digits, 10 training images a class (enough to judge a gain), 2 views of 4 candidates, read with the pixels."""
    base = small_config(**{"iterations": 0, "mapping": "linear", "labels_per_class": None, "candidates": 4, "views": 2, "free_views": "pixels"} | method)
    return base.model_copy(update={"data": DataConfig(train_per_class=10, test_size=N_TEST)})


class NoiseModel(ProjectionModel):
    """An API whose answers say nothing about the image: a softmax of noise seeded by its bytes."""

    cache_scope = model_id = "noise"

    def answer(self, image: bytes) -> Scores:
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(image).digest()[:8], "big"))
        p = np.exp(rng.normal(0, 1, len(self.vocabulary)))
        return dict(zip(self.vocabulary, (p / p.sum()).tolist()))


class DigitExpert(ProjectionModel):
    """An API that knows the digits far better than 10 images a class can teach: a logistic
    regression fitted on every image of scikit-learn's digits, reading the canvas's middle."""

    cache_scope = model_id = "expert"

    def __init__(self) -> None:
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression

        super().__init__()
        digits = load_digits()
        self.model = LogisticRegression(max_iter=2000).fit(digits.data / 16.0, digits.target)

    def answer(self, image: bytes) -> Scores:
        with Image.open(io.BytesIO(image)) as decoded:
            grey = decoded.convert("L")
            side = grey.size[0]
            inner = grey.crop((side * 10 // 32, side * 10 // 32, side * 22 // 32, side * 22 // 32)).resize((8, 8), Image.Resampling.BILINEAR)
        p = self.model.predict_proba(np.asarray(inner, dtype=float).reshape(1, -1) / 255.0)[0]
        scores = np.full(len(self.vocabulary), 1e-4)
        scores[:10] += p
        return dict(zip(self.vocabulary, (scores / scores.sum()).tolist()))


class Refusing(ProjectionModel):
    def predict(self, images: Sequence[bytes], *, meter: Meter = NULL_METER) -> list[Scores]:
        if images:
            raise AssertionError(f"{len(images)} images sent where the free readout needs none")
        return []


def test_free_views_are_named_once_and_refused_when_unknown() -> None:
    assert [view.spec for view in free_views("pixels, local")] == ["pixels", "local"] and free_views("none") == ()
    with pytest.raises(ConfigError, match="unknown free view 'pixel': choose from pixels, local"):
        free_views("pixel")
    with pytest.raises(ValueError, match="unknown free_views 'edges'"):
        MethodConfig(free_views="pixels,edges")
    with pytest.raises(ConfigError, match="no such ONNX file"):
        free_views("local=/nowhere/model.onnx")


def test_a_users_onnx_network_is_a_free_view_named_by_its_checksum(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["image"], ["pooled"])], "pool",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
                              [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["n", 3, 1, 1])])
    path = tmp_path / "pool.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    (view,) = free_views(f"local={path}")
    images = np.random.default_rng(0).uniform(-1, 1, (5, 12, 12, 3))
    features = view.features(images)
    assert features.shape == (5, 3)  # its first output, flattened
    assert np.allclose(features, images.mean(axis=(1, 2)), atol=0.02)  # the images at its 16 × 16, as 8-bit levels
    assert view.identity() == {"view": "local", "model": "pool.onnx", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    recorded = [view.identity()]
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ConfigError, match="install the same network"):
        check_identity((LocalNetwork(str(path)),), recorded)


def test_where_the_api_adds_nothing_the_free_readout_is_served_and_a_prediction_sends_no_query(tmp_path: Path) -> None:
    store = Store(tmp_path)
    result = Trainer(config(), NoiseModel(), store).run()
    assert not result.api_gain["beyond_noise"] and (result.views, result.queries_per_prediction) == (0, 0)
    split = run_split(config())
    alone = stacked_readout(free_features(("pixels",), split.x_train), None, split.y_train, split.n_classes)
    expected = np.argmax(alone.target_scores(np.hstack(free_features(("pixels",), split.x_test))), axis=1)
    assert result.test_accuracy == float(np.mean(expected == split.y_test))  # the free readout, nothing else
    assert evaluate_run(store, config(), Refusing())["queries_paid"] == 0
    learned = LearnedProgram.from_run(store, "run", split.classes)
    written = {path.name for path in learned.save(tmp_path / "export", split.x_test)}
    assert written == {"program.npz", "mapping.json", "config.json"}  # no program to picture
    assert json.loads((tmp_path / "export" / "mapping.json").read_text())["free_views"] == [{"spec": "pixels", "view": "pixels", "side": 28}]
    prediction = LearnedProgram.load(tmp_path / "export").predict(Refusing(), Store(tmp_path / "elsewhere"), split.x_test, budget_usd=0.0,
                                                                  price_per_1k=1.0, ledger=None)
    assert np.array_equal(np.argmax(prediction.shares, axis=1), expected) and prediction.queries_paid == 0


def test_where_the_api_adds_its_views_are_served_beside_the_pixels_and_resume_and_export_read_them_alike(tmp_path: Path) -> None:
    store = Store(tmp_path)
    result = Trainer(config(), DigitExpert(), store).run()
    gain = result.api_gain
    assert gain["beyond_noise"] and result.views == 2 and result.free_baseline == {"views": ["pixels"], "cv_accuracy": gain["free_cv_accuracy"]}
    alone = Trainer(config(free_views="none").model_copy(update={"name": "alone"}), DigitExpert(), store).run()
    assert result.test_accuracy >= alone.test_accuracy - 0.05 and result.test_accuracy > 0.85
    again = Trainer(config(), DigitExpert(), store).run()  # read back from the checkpoint
    assert (again.program_sha256, again.test_accuracy, again.queries_paid) == (result.program_sha256, result.test_accuracy, result.queries_paid)
    split = run_split(config())
    learned = LearnedProgram.from_run(store, "run", split.classes)
    learned.save(tmp_path / "export", split.x_test)
    prediction = LearnedProgram.load(tmp_path / "export").predict(DigitExpert(), Store(tmp_path / "elsewhere"), split.x_test, budget_usd=None,
                                                                  price_per_1k=1.0, ledger=None)
    assert float(np.mean(np.argmax(prediction.shares, axis=1) == split.y_test)) == result.test_accuracy
    assert prediction.queries_paid == 2 * N_TEST  # the pixels computed here, the two views paid


def test_the_cli_says_the_api_adds_nothing_serves_the_pixels_and_predicts_without_a_query(home: Path, fake_provider: None, tmp_path: Path) -> None:
    from test_cli import digit_files, invoke
    from test_portfolio import last_json

    flags = ("--dataset", "digits:0,1", "--train-per-class", "10", "--test-size", "4", "--candidates", "4", "--views", "2", "--price-per-1k", "1.5")
    trained = last_json(invoke("train", *flags, "--name", "f", "--json").output)
    assert (trained["views"], trained["queries_per_prediction"], trained["api_gain"]["beyond_noise"]) == (0, 0, False)
    human = invoke("train", *flags, "--name", "g").output  # the same run again: its answers from the cache
    assert "the portfolio: 2 view(s) chosen of 4 candidate programs" in human and "none served (below)" in human
    assert "so barapi serves your images' own readout: a prediction sends no query" in human
    images = digit_files(tmp_path / "new")
    assert "0 queries paid" in invoke("predict", "f", *map(str, images)).output
    assert invoke("export", "f", "--out", str(tmp_path / "export")).exit_code == 0
    by_export = invoke("predict", "--program", str(tmp_path / "export"), *map(str, images), "--json").output.strip().splitlines()
    assert len(by_export) == len(images) and all(last_json(line)["class"] in ("0", "1") for line in by_export)
