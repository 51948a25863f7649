"""The Hugging Face and Open Inference Protocol adapters against recorded answer shapes of the
real services (httpx.MockTransport), and what the contract suite cannot see: labels, the loading
wait, the tensor this side prepares, logits, and prices by the hour."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from barapi.adapters.huggingface import HuggingFaceClassifier
from barapi.adapters.oip import HEADER_LENGTH, OipClassifier, Preprocessing
from barapi.errors import PriceError, ProviderResponseError
from barapi.money import Pricing
from barapi.method.program import Program, initial_parameters
from barapi.config import Geometry
from test_torchserve_adapter import RecordingMeter

# Recorded: google/vit-base-patch16-224 through the serverless router (the shape huggingface.js
# documents for the task), and a cold model's 503.
HF_ANSWER = [{"label": "Egyptian cat", "score": 0.5304}, {"label": "tabby, tabby cat", "score": 0.2141}, {"label": "tiger cat", "score": 0.1233}]
HF_LOADING = {"error": "Model google/vit-base-patch16-224 is currently loading", "estimated_time": 20.0}
# Recorded: KServe's v2 JSON answer (a CIFAR-10 model), and Triton's classification extension
# (its image_client example: densenet_onnx answers logits, best first).
KSERVE_ANSWER = {"model_name": "cifar10", "model_version": None, "id": "7d6e", "parameters": None, "outputs": [
    {"name": "output-0", "shape": [1, 4], "datatype": "FP32", "parameters": None, "data": [0.1, 0.6, 0.25, 0.05]}]}
TRITON_CLASSIFIED = {"model_name": "densenet_onnx", "model_version": "1", "outputs": [
    {"name": "fc6_1", "datatype": "BYTES", "shape": [1, 3], "data": ["15.349566:504:COFFEE MUG", "13.227467:968:CUP", "10.424896:505:COFFEEPOT"]}]}


@pytest.fixture(scope="module")
def png() -> bytes:
    g = Geometry(program_resolution=8)
    return Program(g).encode_batch(initial_parameters(g, 1.0, np.random.default_rng(0)), np.zeros((1, 64, 64, 3)))[0]


def client(handler) -> httpx.Client:  # noqa: ANN001
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_huggingface_asks_every_published_label_in_the_json_body_and_reads_the_recorded_answer(png: bytes) -> None:
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/google/vit/resolve/main/config.json":
            return httpx.Response(200, json={"id2label": {"1": "tabby, tabby cat", "0": "Egyptian cat", "2": "tiger cat"}})
        sent.append(request)
        return httpx.Response(200, json=HF_ANSWER)

    hf = HuggingFaceClassifier(client(handler), key="k", model="google/vit", base_url="https://router.example", hub_url="https://hub.example")
    assert hf.labels() == ["Egyptian cat", "tabby, tabby cat", "tiger cat"]  # in index order
    assert hf.predict([png]) == [{answer["label"]: answer["score"] for answer in HF_ANSWER}]
    body = json.loads(sent[0].content)
    assert str(sent[0].url) == "https://router.example/hf-inference/models/google/vit"
    assert base64.b64decode(body["inputs"]) == png and body["parameters"] == {"function_to_apply": "softmax", "top_k": 3}
    assert sent[0].headers["Authorization"] == "Bearer k"


def test_huggingface_without_a_published_config_keeps_the_endpoints_top_k(png: bytes) -> None:
    sent = []
    handler = lambda r: httpx.Response(404, json={"error": "Repository Not Found"}) if r.method == "GET" else sent.append(r) or httpx.Response(200, json=HF_ANSWER)  # noqa: E731
    hf = HuggingFaceClassifier(client(handler), key="k", model="", endpoint_url="https://x.endpoints.huggingface.cloud")
    assert hf.labels() is None
    hf.predict([png])
    assert str(sent[0].url) == "https://x.endpoints.huggingface.cloud" and "top_k" not in json.loads(sent[0].content)["parameters"]


def test_a_loading_model_is_a_wait_of_its_estimated_time_not_a_payment(png: bytes) -> None:
    answers = [httpx.Response(503, json=HF_LOADING), httpx.Response(200, json=HF_ANSWER)]
    hf = HuggingFaceClassifier(client(lambda r: answers.pop(0)), key="k", model="google/vit")
    slept: list[float] = []
    hf.sender.sleep = slept.append
    meter = RecordingMeter()
    assert hf.predict([png], meter=meter)[0]["tiger cat"] == 0.1233
    assert slept == [20.0] and meter.released == 1 and meter.paid == 1 and meter.failed_billed == 0


def test_the_tensor_this_side_prepares_is_the_models_own_preprocessing(png: bytes) -> None:
    from barapi.mock.model import preprocess

    assert np.array_equal(Preprocessing().tensor(png, 224, "FP32", channels_first=True), preprocess(png, 224))
    raw = Preprocessing().tensor(png, 224, "UINT8", channels_first=False)
    assert raw.dtype == np.uint8 and raw.shape == (224, 224, 3)
    torchvision = Preprocessing(interpolation="bilinear", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)).tensor(png, 224, "FP32", True)
    assert not np.allclose(torchvision, preprocess(png, 224))


def oip_handler(metadata: dict, answer: httpx.Response, sent: list) -> object:
    return lambda r: httpx.Response(200, json=metadata) if r.method == "GET" else sent.append(r) or answer


def test_oip_sends_a_binary_tensor_shaped_by_the_metadata_and_reads_kserves_json_answer(png: bytes, tmp_path) -> None:  # noqa: ANN001
    metadata = {"name": "cifar10", "inputs": [{"name": "input-0", "datatype": "UINT8", "shape": [-1, 32, 32, 3]}],
                "outputs": [{"name": "output-0", "datatype": "FP32", "shape": [-1, 4]}]}
    labels = tmp_path / "labels.txt"
    labels.write_text("plane\ncar\nbird\ncat\n")
    sent: list[httpx.Request] = []
    oip = OipClassifier(client(oip_handler(metadata, httpx.Response(200, json=KSERVE_ANSWER), sent)), base_url="http://127.0.0.1:9",
                        model="cifar10", labels_file=labels)
    assert oip.predict([png]) == [{"plane": pytest.approx(0.1), "car": pytest.approx(0.6), "bird": pytest.approx(0.25), "cat": pytest.approx(0.05)}]
    header_length = int(sent[0].headers[HEADER_LENGTH])
    header = json.loads(sent[0].content[:header_length])
    assert header["inputs"][0] == {"name": "input-0", "shape": [1, 32, 32, 3], "datatype": "UINT8", "parameters": {"binary_data_size": 32 * 32 * 3}}
    assert str(sent[0].url) == "http://127.0.0.1:9/v2/models/cifar10/infer"


def test_oip_reads_tritons_binary_answer(png: bytes) -> None:
    metadata = {"name": "m", "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3, 224, 224]}], "outputs": [{"name": "p", "datatype": "FP32", "shape": [-1, 3]}]}
    scores = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]], dtype=np.float32)
    header = json.dumps({"model_name": "m", "outputs": [{"name": "p", "datatype": "FP32", "shape": [2, 3], "parameters": {"binary_data_size": scores.nbytes}}]}).encode()
    answer = httpx.Response(200, content=header + scores.tobytes(), headers={HEADER_LENGTH: str(len(header))})
    results = OipClassifier(client(oip_handler(metadata, answer, [])), model="m").predict([png, png])
    assert np.allclose([list(r.values()) for r in results], scores)
    assert list(results[0]) == ["0", "1", "2"]  # no labels file: the indices


def test_logits_are_refused_unless_softmax_is_asked_for(png: bytes) -> None:
    metadata = {"name": "densenet_onnx", "inputs": [{"name": "data_0", "datatype": "BYTES", "shape": [-1, 1]}],
                "outputs": [{"name": "fc6_1", "datatype": "FP32", "shape": [-1, 3]}]}
    build = lambda softmax: OipClassifier(client(oip_handler(metadata, httpx.Response(200, json=TRITON_CLASSIFIED), [])), model="densenet_onnx",  # noqa: E731
                                          input_format="bytes", labels_from_server=True, softmax=softmax)
    with pytest.raises(ProviderResponseError, match="--softmax"):
        build(False).predict([png])
    answer = build(True).predict([png])[0]
    logits = np.array([15.349566, 13.227467, 10.424896])
    assert list(answer) == ["COFFEE MUG", "CUP", "COFFEEPOT"]
    assert list(answer.values()) == pytest.approx((np.exp(logits) / np.exp(logits).sum()).tolist())


def test_an_hour_buys_3600_times_the_throughput_in_images() -> None:
    hourly = Pricing(per_hour=1.80, throughput=25.0)
    assert hourly.per_1k == pytest.approx(1.80 / (3600 * 25) * 1000)  # $0.02 per 1,000 images
    assert Pricing(per_hour=1.80, per_request=0.0001, throughput=25.0).per_1k == pytest.approx(0.02 + 0.1)
    assert "--throughput" in hourly.describe() and "measured" in hourly.measured(50.0).describe()
    assert hourly.measured(50.0).per_1k == pytest.approx(0.01)
    with pytest.raises(PriceError, match="--throughput"):
        Pricing(per_hour=1.80).per_1k


def test_a_model_oip_cannot_fill_is_refused_before_anything_is_reserved(png: bytes) -> None:
    from barapi.errors import ConfigError

    posts: list[httpx.Request] = []
    missing = client(lambda r: httpx.Response(404, json={"error": "Request for unknown model"}) if r.method == "GET" else posts.append(r) or httpx.Response(500))
    meter = RecordingMeter()
    with pytest.raises(ConfigError, match="no model metadata"):
        OipClassifier(missing, model="ghost").predict([png], meter=meter)
    ensemble = {"name": "e", "inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [-1, 1]}], "outputs": [{"name": "S", "datatype": "FP32", "shape": [-1, 3]}]}
    with pytest.raises(ConfigError, match="--input-format bytes"):
        OipClassifier(client(oip_handler(ensemble, httpx.Response(500), posts)), model="e").predict([png], meter=meter)
    assert meter.sent == 0 and posts == []
    with pytest.raises(ConfigError, match="binary extension"):
        OipClassifier(httpx.Client(), model="e", input_format="bytes", binary=False)
