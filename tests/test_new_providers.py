"""`--provider huggingface` and `--provider oip` end to end against the local server: estimate,
train, resume, eval and predict, priced by the endpoint-hour."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from barapi.store import Store
from harness.killsoak import kill_and_resume

pytestmark = pytest.mark.slow

def small(iterations: int = 4) -> list[str]:
    return ["--dataset", "digits", "--train-per-class", "3", "--test-size", "10", "--iterations", str(iterations),
            "--batch-size", "4", "--q", "2", "--estimator", "one-sided", "--concurrency", "4"]


SMALL = small()
PROVIDERS = {
    "huggingface": lambda url: ["--provider", "huggingface", "--model", "coarse-5", "--base-url", url, "--hub-url", url],
    "oip": lambda url: ["--provider", "oip", "--model", "coarse-5", "--base-url", url],
    "oip-bytes": lambda url: ["--provider", "oip", "--model", "coarse-5", "--base-url", url, "--input-format", "bytes", "--labels-from-server"],
}
HOURLY = ["--price-per-hour", "3.6", "--throughput", "10"]  # $3.60 an hour at 10 images/s: $0.10 per 1,000 images


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | {"BARAPI_HOME": str(home), "HF_TOKEN": "mock-key"}
    result = subprocess.run([sys.executable, "-m", "barapi.cli", *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def last_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_each_new_provider_estimates_trains_resumes_evaluates_and_predicts_at_its_hourly_price(server_url: str, tmp_path: Path, provider: str) -> None:
    flags = PROVIDERS[provider](server_url)
    estimate = last_json(cli(tmp_path, "estimate", *flags, *SMALL, *HOURLY, "--json"))
    assert estimate["price_per_1k"] == pytest.approx(0.10)
    assert {k: estimate["pricing"][k] for k in ("per_hour", "throughput", "throughput_source")} == {"per_hour": 3.6, "throughput": 10.0, "throughput_source": "given"}
    first = last_json(cli(tmp_path, "train", *flags, *SMALL, *HOURLY, "--name", "r", "--json"))
    # Every estimated query answered, paid or from the cache (a repeated image; oip's vocabulary is learnt from an answer read again).
    assert first["status"] == "completed" and first["queries_paid"] <= estimate["queries"]["total"] <= first["queries_paid"] + first["queries_cached"]
    assert first["cost_usd"] == pytest.approx(first["queries_paid"] * 0.10 / 1000)
    extended = last_json(cli(tmp_path, "resume", "r", "--iterations", "6", "--json"))
    # From the checkpoint: 2 more steps (4 images × 3 points), the readout's pass and the test set at the new program.
    assert extended["iterations"] == 6 and first["queries_paid"] < extended["queries_paid"] <= first["queries_paid"] + 2 * 12 + 30 + 10
    paid, cost = Store(tmp_path).spent("r")
    assert paid == extended["queries_paid"] and cost == pytest.approx(paid * 0.10 / 1000)
    report = last_json(cli(tmp_path, "eval", "r", "--json"))
    assert report["accuracy"] == extended["test_accuracy"] and report["queries_paid"] == 0
    image = tmp_path / "digit.png"
    Image.fromarray(np.full((16, 16), 200, dtype=np.uint8)).save(image)
    prediction = last_json(cli(tmp_path, "predict", "r", str(image), "--json"))
    assert prediction["class"] in [str(d) for d in range(10)]
    assert sum(prediction["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_the_adapters_tensors_get_the_answers_the_server_gives_to_the_encoded_image(server_url: str, imagenet_model) -> None:
    """The same model through a tensor this side preprocessed (oip), through the server's own
    decoding (oip --input-format bytes, labelled by Triton's classification extension) and through
    Hugging Face: the same scores, so the adapter preprocesses as the model does."""
    from barapi.adapters.huggingface import HuggingFaceClassifier
    from barapi.adapters.http import make_client
    from barapi.adapters.oip import OipClassifier
    from barapi.method.program import Program, initial_parameters
    from barapi.config import Geometry

    g = Geometry(program_resolution=8)
    rng = np.random.default_rng(0)
    w, targets = initial_parameters(g, 1.0, rng), rng.uniform(-1, 1, (3, 64, 64, 3))
    images = Program(g).encode_batch(w, targets)
    with make_client() as client:
        hf = HuggingFaceClassifier(client, key="mock-key", model="coarse-5", base_url=server_url, hub_url=server_url)
        labels = hf.labels()
        by_hf = hf.predict(images)
        by_tensor = OipClassifier(client, base_url=server_url, model="coarse-5").predict(images)
        by_bytes = OipClassifier(client, base_url=server_url, model="coarse-5", input_format="bytes", labels_from_server=True).predict(images)
    for named, indexed, decoded in zip(by_hf, by_tensor, by_bytes):
        assert len(named) == 5 and sum(named.values()) == pytest.approx(1, abs=1e-5)
        assert [indexed[str(i)] for i in range(5)] == pytest.approx([named[label] for label in labels], abs=1e-6)
        assert decoded == pytest.approx(named, abs=1e-5)  # the extension writes 6 decimals
    # The program unrounded (a float canvas, oip's default for tensors): what the model in process
    # answers to the same float canvas, and not quite what it answers to the 8-bit one.
    from barapi.mock.heads import coarse_model
    from barapi.mock.model import InProcessClassifier

    exact = Program(g, "float32").encode_batch(w, targets)
    with make_client() as client:
        by_float = OipClassifier(client, base_url=server_url, model="coarse-5").predict(exact)
    in_process = InProcessClassifier(imagenet_model, served=coarse_model("coarse-5"), canvas_encoding="float32").predict(exact)
    for served, local, rounded in zip(by_float, in_process, by_tensor):
        assert [served[str(i)] for i in range(5)] == pytest.approx([local[label] for label in labels], abs=1e-5)
        assert served != rounded and list(served.values()) == pytest.approx(list(rounded.values()), abs=0.05)


def test_an_hourly_price_without_a_throughput_is_measured_on_a_first_batch(server_url: str, tmp_path: Path) -> None:
    result = cli(tmp_path, "estimate", *PROVIDERS["oip"](server_url), *SMALL, "--price-per-hour", "1.0")
    assert "measured on the first batch" in result.stderr
    figures = last_json(cli(tmp_path, "estimate", *PROVIDERS["oip"](server_url), *SMALL, "--price-per-hour", "1.0", "--json"))
    throughput = figures["pricing"]["throughput"]
    assert figures["pricing"]["throughput_source"] == "measured" and throughput > 1
    assert figures["price_per_1k"] == pytest.approx(1.0 / (3.6 * throughput))


def test_the_measured_first_batch_is_booked_once_and_cached(server_url: str, tmp_path: Path) -> None:
    from barapi.run.checkpoint import load_config

    flags = [*PROVIDERS["oip"](server_url), *SMALL, "--json"]
    measured = last_json(cli(tmp_path / "measured", "train", *flags, "--price-per-hour", "1.0", "--name", "m"))
    given = last_json(cli(tmp_path / "given", "train", *flags, *HOURLY, "--name", "g"))
    # The probe's images are the label mapping's first: paid once, then answered from the cache.
    assert measured["queries_paid"] == given["queries_paid"] and measured["queries_cached"] >= given["queries_cached"] + 16
    store = Store(tmp_path / "measured")
    paid, cost = store.spent("m")
    assert paid == measured["queries_paid"] and cost == pytest.approx(paid * load_config(store, "m").price_per_1k / 1000)


def test_an_hourly_budget_holds(server_url: str, tmp_path: Path) -> None:
    # $0.10 per 1,000 images: a budget of $0.01 pays for 100 of the run's 118 queries; the run
    # stops its steps early to keep what its ending needs, and ends measured within the budget.
    summary = last_json(cli(tmp_path, "train", *PROVIDERS["huggingface"](server_url), *SMALL, *HOURLY, "--budget", "0.01", "--name", "b", "--yes", "--json"))
    paid, cost = Store(tmp_path).spent("b")
    assert summary["iterations"] < 4 and summary["test_accuracy"] is not None
    assert paid == summary["queries_paid"] <= 100 and cost <= 0.01 + 1e-9


def test_a_loading_model_is_waited_for_not_failed(model_home: Path, imagenet_model, tmp_path: Path) -> None:
    import httpx
    from harness.servers import start_server

    process, url = start_server(model_home, "--loading-s", "8")
    try:
        loading = httpx.post(f"{url}/hf-inference/models/coarse-5", content=b"", headers={"Authorization": "Bearer mock-key"})
        assert loading.status_code == 503 and 0 < loading.json()["estimated_time"] <= 8
        result = cli(tmp_path, "train", *PROVIDERS["huggingface"](url), *SMALL, "--iterations", "1", "--price-per-1k", "0", "--json")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert last_json(result)["status"] == "completed"


def test_a_killed_huggingface_run_resumes_to_the_same_program(server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flags = [*PROVIDERS["huggingface"](server_url), *small(12), "--price-per-1k", "0"]
    reference = last_json(cli(tmp_path / "ref", "train", *flags, "--name", "k", "--json"))
    monkeypatch.setenv("HF_TOKEN", "mock-key")
    soak = kill_and_resume(tmp_path / "killed", flags, "k", seed=7, min_s=1.5, max_s=4.0, max_kills=3)
    assert soak.integrity_failures == 0
    assert soak.final["program_sha256"] == reference["program_sha256"]
    assert soak.final["test_accuracy"] == reference["test_accuracy"]
