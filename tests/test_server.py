"""The mock server as a real process on loopback, serving the real ImageNet model."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from barapi.method.labels import imagenet_classes
from barapi.method.program import Program, initial_parameters
from barapi.config import Geometry
from harness.servers import start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image() -> bytes:
    g = Geometry(program_resolution=8)
    return Program(g).encode_batch(initial_parameters(g, 1.0, np.random.default_rng(0)), np.zeros((1, 64, 64, 3)))[0]


def test_ping_and_models(server_url: str) -> None:
    assert httpx.get(f"{server_url}/ping").json() == {"status": "Healthy"}
    models = httpx.get(f"{server_url}/models").json()["models"]
    assert models[0]["modelName"] == "efficientnet-lite0"


def test_prediction_is_a_softmax_over_imagenet_names_sorted_descending(server_url: str, image: bytes) -> None:
    scores = httpx.post(f"{server_url}/predictions/efficientnet-lite0", content=image).json()
    assert set(scores) == set(imagenet_classes())
    values = list(scores.values())
    assert values == sorted(values, reverse=True)
    assert sum(values) == pytest.approx(1.0, abs=1e-4)


def test_multipart_data_field_gives_the_same_answer(server_url: str, image: bytes) -> None:
    raw = httpx.post(f"{server_url}/predictions/efficientnet-lite0/1.0", content=image).json()
    multipart = httpx.post(f"{server_url}/predictions/efficientnet-lite0", files={"data": ("x.png", image, "image/png")}).json()
    assert raw == multipart


def test_errors_are_written_as_torchserve_writes_them(server_url: str, image: bytes) -> None:
    missing = httpx.post(f"{server_url}/predictions/resnet", content=image)
    assert missing.status_code == 404
    assert missing.json() == {"code": 404, "type": "ModelNotFoundException", "message": "Model not found: resnet"}
    garbage = httpx.post(f"{server_url}/predictions/efficientnet-lite0", content=b"not an image")
    assert garbage.status_code == 503
    assert garbage.json()["message"] == "Prediction failed"


def test_concurrent_requests_are_all_answered_consistently(server_url: str, image: bytes) -> None:
    with httpx.Client() as client, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: client.post(f"{server_url}/predictions/efficientnet-lite0", content=image).json(), range(48)))
    first = answers[0]
    for answer in answers:
        assert answer.keys() == first.keys()
        assert np.allclose(list(answer.values()), list(first.values()), atol=1e-5)  # batched or not


def test_topk_mimics_torchserves_stock_handler(imagenet_model, model_home, image: bytes) -> None:
    process, url = start_server(model_home, "--topk", "5")
    try:
        scores = httpx.post(f"{url}/predictions/efficientnet-lite0", content=image).json()
        assert len(scores) == 5
    finally:
        process.terminate()
        process.wait(10)


def test_injected_throttling_carries_retry_after(imagenet_model, model_home, image: bytes) -> None:
    process, url = start_server(model_home, "--throttle-rate", "1.0")
    try:
        response = httpx.post(f"{url}/predictions/efficientnet-lite0", content=image)
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    finally:
        process.terminate()
        process.wait(10)
