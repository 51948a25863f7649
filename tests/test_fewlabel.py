"""Few-label models (the paper's real-API setting): the local server's coarse models and trained
projects, vocabulary discovery per provider, and mappings sized to — or refused by — the
vocabulary before any paid query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from harness.servers import start_server
from fakes import ProjectionModel
from test_trainer import config

from barapi.adapters.azure import AzureCustomVisionClassifier
from barapi.adapters.clarifai import ClarifaiClassifier
from barapi.adapters.http import make_client
from barapi.adapters.torchserve import TorchServeClassifier
from barapi.classifier import Scores
from barapi.errors import ConfigError
from barapi.mock.heads import COARSE_MODELS, coarse_groups, coarse_model, group_matrix
from barapi.run.planning import estimate_run
from barapi.store import Store
from barapi.run.trainer import Trainer


class FewLabelModel(ProjectionModel):
    """The projection model's 60 scores summed into ``groups`` labels; publishes them or not."""

    model_id = "few"

    def __init__(self, groups: int = 5, publish: bool = True, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.groups, self.publish = [f"group{g}" for g in range(groups)], publish

    def labels(self) -> list[str] | None:
        return self.groups if self.publish else None

    def answer(self, image: bytes) -> Scores:
        fine = super().answer(image)
        return {g: sum(v for label, v in fine.items() if int(label[5:]) % len(self.groups) == i) for i, g in enumerate(self.groups)}


def test_coarse_groups_cover_imagenet_once_with_named_groups() -> None:
    groups = coarse_groups()
    assert sorted(groups) == sorted(COARSE_MODELS)
    for name, members in groups.items():
        matrix = group_matrix(members)  # raises unless every class is in exactly one group
        assert matrix.shape == (1000, int(name.split("-")[1]))
        assert len({g["name"] for g in members}) == len(members) and all(g["name"] for g in members)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(1000), size=3)
    scores = coarse_model("coarse-5").scores(probabilities)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    np.testing.assert_allclose(scores[:, 1], probabilities[:, 151:269].sum(axis=1))  # the dogs


def test_default_m_shrinks_to_fit_a_small_vocabulary_and_says_so(tmp_path: Path) -> None:
    notices: list[str] = []
    trainer = Trainer(config(mapping="frequency", labels_per_class=None), FewLabelModel(groups=25), Store(tmp_path),
                      on_progress=lambda p: p.notice and notices.append(p.notice))
    result = trainer.run()  # 10 classes, 25 labels: 2 per class instead of 5
    assert result.status == "completed"
    assert trainer._current.mapping.described().shape == (10, 2)  # noqa: SLF001
    assert notices == ["the model knows 25 labels: 2 per class instead of 5"]


@pytest.mark.parametrize("publish", [True, False])
def test_a_mapping_that_cannot_fit_is_refused_before_paying(tmp_path: Path, publish: bool) -> None:
    store = Store(tmp_path)
    model = FewLabelModel(groups=5, publish=publish)
    run = config(mapping="frequency", labels_per_class=None)  # 10 classes, 5 labels: no m fits
    if publish:
        with pytest.raises(ConfigError, match="use --mapping linear"):
            estimate_run(run, model, store)
    with pytest.raises(ConfigError, match="use --mapping linear"):
        Trainer(run, model, store).run()
    # Published labels: nothing paid. Otherwise the first answer (one image) taught them.
    assert store.spent("run")[0] == (0 if publish else 1)
    assert store.ledger_counts("run").get("paid", 0) == store.spent("run")[0]


def test_the_linear_readout_runs_on_fewer_labels_than_classes(tmp_path: Path) -> None:
    result = Trainer(config(mapping="linear", labels_per_class=None), FewLabelModel(groups=5), Store(tmp_path)).run()
    assert result.status == "completed" and result.test_accuracy is not None


def test_an_unpublished_vocabulary_is_learnt_from_the_first_answer_at_no_extra_cost(tmp_path: Path) -> None:
    published = Trainer(config(), FewLabelModel(groups=5), Store(tmp_path / "a")).run()
    learnt = Trainer(config(), FewLabelModel(groups=5, publish=False), Store(tmp_path / "b")).run()
    assert learnt.program_sha256 == published.program_sha256
    assert learnt.queries_paid == published.queries_paid  # the first image is the mapping's first, paid once
    assert learnt.queries_cached == published.queries_cached + 1


# -- the local server and the adapters -----------------------------------------------------------

@pytest.mark.slow
def test_the_server_lists_and_describes_every_model(server_url: str) -> None:
    names = [m["modelName"] for m in httpx.get(f"{server_url}/models").json()["models"]]
    assert names == ["efficientnet-lite0", "coarse-2", "coarse-5", "coarse-10"]
    plain = httpx.get(f"{server_url}/models/coarse-5").json()
    assert plain[0]["modelName"] == "coarse-5" and "customizedMetadata" not in plain[0]
    described = httpx.get(f"{server_url}/models/coarse-5?customized=true").json()
    assert json.loads(described[0]["customizedMetadata"])["labels"] == coarse_model("coarse-5").labels
    assert httpx.get(f"{server_url}/models/nope").status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize("name", COARSE_MODELS)
def test_vocabulary_discovery_per_provider(server_url: str, name: str) -> None:
    """TorchServe and Clarifai publish a model's labels (free); Azure's prediction key cannot
    list tags, but every answer carries all of them."""
    expected = coarse_model(name).labels
    client = make_client()
    torchserve = TorchServeClassifier(client, base_url=server_url, model=name)
    clarifai = ClarifaiClassifier(client, pat="mock-key", base_url=server_url, model=name, rate_per_second=None)
    azure = AzureCustomVisionClassifier(client, key="mock-key", endpoint=server_url, project_id=name, iteration="published", rate_per_second=None)
    assert torchserve.labels() == expected and clarifai.labels() == expected
    assert azure.labels() is None
    image = _image()
    for classifier in (torchserve, clarifai, azure):
        answer = classifier.predict([image])[0]
        assert sorted(answer) == sorted(expected)
        assert sum(answer.values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_a_wrong_key_publishes_nothing(server_url: str) -> None:
    clarifai = ClarifaiClassifier(make_client(), pat="wrong", base_url=server_url, model="coarse-5")
    assert clarifai.labels() is None  # the prediction that follows says what is wrong with the key


def _image() -> bytes:
    from barapi.method.program import Program, initial_parameters
    from barapi.config import Geometry

    g = Geometry(embed_size=64)
    return Program(g).encode_batch(initial_parameters(g, 1.0, np.random.default_rng(0)), np.zeros((1, 64, 64, 3)))[0]


FEW = ["--dataset", "digits:3,8", "--train-per-class", "4", "--test-size", "10", "--iterations", "3",
       "--batch-size", "4", "--q", "1", "--concurrency", "4", "--rate-limit", "0", "--json", "--yes"]
PROTOCOLS = {
    "torchserve": lambda url: ["--base-url", url],
    "clarifai": lambda url: ["--provider", "clarifai", "--base-url", url],
    "azure": lambda url: ["--provider", "azure", "--endpoint", url, "--iteration", "published"],
}


@pytest.mark.slow
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("model", ["coarse-2", "coarse-5"])
def test_the_default_run_reprograms_a_few_label_model_through_each_protocol(server_url: str, tmp_path: Path, protocol: str, model: str) -> None:
    env = os.environ | {"BARAPI_HOME": str(tmp_path), "CLARIFAI_PAT": "mock-key", "AZURE_CV_PREDICTION_KEY": "mock-key"}
    flags = PROTOCOLS[protocol](server_url) + (["--project-id", model] if protocol == "azure" else ["--model", model])
    result = subprocess.run([sys.executable, "-m", "barapi.cli", "train", *flags, *FEW, "--name", "few"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["test_accuracy"] is not None
    # label mapping (8) + 3 × 4 × 3 (two-sided, q = 1) + closing pass (8) + test (10), the Azure
    # vocabulary's first image among the mapping's
    assert summary["queries"] == 8 + 36 + 8 + 10 + (1 if protocol == "azure" else 0)
    # What the run measured is what it serves: its program and readout read the test images again
    # through the same protocol, from the cache, to the same accuracy.
    evaluated = subprocess.run([sys.executable, "-m", "barapi.cli", "eval", "few", "--json"], env=env, capture_output=True, text=True, timeout=120)
    figures = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert (figures["accuracy"], figures["queries_paid"], int(np.sum(figures["confusion"]))) == (summary["test_accuracy"], 0, 10)


@pytest.mark.slow
def test_estimate_refuses_a_mapping_the_model_cannot_hold_before_any_query(server_url: str, tmp_path: Path) -> None:
    env = os.environ | {"BARAPI_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "barapi.cli", "train", "--base-url", server_url, "--model", "coarse-5",
                             "--mapping", "frequency", *FEW[:1], "digits", *FEW[2:], "--name", "refused"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith("use --mapping linear (a readout over every label's score)")
    assert "Traceback" not in result.stderr
    assert not Store(tmp_path).has_run("refused")  # nothing recorded, nothing paid


@pytest.mark.slow
def test_a_project_is_fitted_once_and_served_from_its_cache_after_a_restart(imagenet_model, model_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    for exported in (model_home / "models").iterdir():
        os.symlink(exported, home / "models" / exported.name)
    spec = ["--project", "shapes=digits"]
    timings = []
    for _ in range(2):
        started = time.monotonic()
        process, url = start_server(home, *spec)
        timings.append(time.monotonic() - started)
        try:
            assert "shapes" in [m["modelName"] for m in httpx.get(f"{url}/models").json()["models"]]
            tags = json.loads(httpx.get(f"{url}/models/shapes?customized=true").json()[0]["customizedMetadata"])["labels"]
            assert tags == [str(d) for d in range(10)]
            answer = AzureCustomVisionClassifier(make_client(), key="mock-key", endpoint=url, project_id="shapes", iteration="it").predict([_image()])[0]
            assert sorted(answer) == sorted(tags)  # every tag, as Azure answers
        finally:
            process.terminate()
            _, err = process.communicate(timeout=10)
        fitted = "project shapes:" in err.decode()
        assert fitted == (len(timings) == 1)  # fitted the first time only
    assert len(list((home / "projects").glob("*.npz"))) == 1


# -- recorded-shape answers of few-label models, on httpx.MockTransport -------------------------
MODERATION = {"safe": 0.9931, "suggestive": 0.0041, "explicit": 0.0013, "drug": 0.0009, "gore": 0.0006}
GTSRB_TAGS = [f"sign-{i:02d}" for i in range(43)]


def clarifai_moderation(request: httpx.Request) -> httpx.Response:
    """Clarifai's moderation model answers each input with its 5 concepts, as the service does
    (outputs in input order, each with its own status, model, input and created_at)."""
    if request.url.path.endswith("/output_info"):
        concepts = [{"id": f"ai_{name}", "name": name, "value": 1.0, "app_id": "main"} for name in MODERATION]
        return httpx.Response(200, json={"status": {"code": 10000, "description": "Ok", "req_id": "r0"},
                                         "model": {"id": "moderation-recognition", "output_info": {"data": {"concepts": concepts}}}})
    inputs = json.loads(request.content)["inputs"]
    outputs = [{"id": f"o{i}", "status": {"code": 10000, "description": "Ok"}, "created_at": "2026-11-27T08:00:00.000000Z",
                "model": {"id": "moderation-recognition", "name": "moderation-recognition", "app_id": "main", "user_id": "clarifai"},
                "input": {"id": f"i{i}", "data": {"image": {"url": "https://samples.clarifai.com/placeholder.gif", "base64": "dHJ1ZQ=="}}},
                "data": {"concepts": [{"id": f"ai_{k}", "name": k, "value": v, "app_id": "main"} for k, v in MODERATION.items()]}}
               for i, _ in enumerate(inputs)]
    return httpx.Response(200, json={"status": {"code": 10000, "description": "Ok", "req_id": "r1"}, "outputs": outputs})


def azure_project(request: httpx.Request) -> httpx.Response:
    """A Custom Vision project with 43 tags answers every tag, sorted by probability."""
    weights = np.linspace(1.0, 0.01, 43)
    predictions = [{"probability": float(w / weights.sum()), "tagId": f"00000000-0000-0000-0000-{i:012d}", "tagName": tag}
                   for i, (tag, w) in enumerate(zip(GTSRB_TAGS, weights))]
    return httpx.Response(200, json={"id": "5b8e", "project": "p", "iteration": "i", "created": "2026-11-27T08:00:00Z", "predictions": predictions})


def test_a_five_concept_clarifai_model_publishes_and_answers_its_concepts() -> None:
    client = httpx.Client(transport=httpx.MockTransport(clarifai_moderation))
    clarifai = ClarifaiClassifier(client, pat="k", base_url="https://api.clarifai.com", model="moderation-recognition", rate_per_second=None)
    assert clarifai.labels() == list(MODERATION)
    answers = clarifai.predict([b"a", b"b", b"c"])
    assert answers == [MODERATION] * 3


def test_a_43_tag_azure_project_is_learnt_from_its_first_answer() -> None:
    client = httpx.Client(transport=httpx.MockTransport(azure_project))
    azure = AzureCustomVisionClassifier(client, key="k", endpoint="https://x.cognitiveservices.azure.com", project_id="p", iteration="i", rate_per_second=None)
    assert azure.labels() is None
    answer = azure.predict([b"a"])[0]
    assert sorted(answer) == sorted(GTSRB_TAGS) and sum(answer.values()) == pytest.approx(1.0)
