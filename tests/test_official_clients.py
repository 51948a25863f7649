"""The local server answers closely enough to the real services that their official Python
clients parse it: clarifai-grpc (JSON channel), azure-cognitiveservices-vision-customvision,
huggingface_hub's InferenceClient and tritonclient.http (the Open Inference Protocol)."""

import io
import uuid

import numpy as np
import pytest

from barapi.method.program import Program, initial_parameters
from barapi.config import Geometry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def png() -> bytes:
    g = Geometry(program_resolution=8)
    return Program(g).encode_batch(initial_parameters(g, 1.0, np.random.default_rng(0)), np.zeros((1, 64, 64, 3)))[0]


def test_clarifai_grpc_json_channel(server_url: str, png: bytes) -> None:
    from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
    from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
    from clarifai_grpc.grpc.api.status import status_code_pb2

    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=server_url))
    request = service_pb2.PostModelOutputsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main"),
        model_id="general-image-recognition",
        inputs=[resources_pb2.Input(data=resources_pb2.Data(image=resources_pb2.Image(base64=png)))] * 2,
    )
    response = stub.PostModelOutputs(request, metadata=(("authorization", "Key mock-key"),))
    assert response.status.code == status_code_pb2.SUCCESS
    assert len(response.outputs) == 2
    concepts = response.outputs[0].data.concepts
    assert len(concepts) == 20  # Clarifai's default
    assert concepts[0].value >= concepts[-1].value and concepts[0].name
    refused = stub.PostModelOutputs(request, metadata=(("authorization", "Key wrong"),))
    assert refused.status.code == status_code_pb2.CONN_KEY_INVALID


def test_azure_custom_vision_prediction_client(server_url: str, png: bytes) -> None:
    from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
    from msrest.authentication import ApiKeyCredentials

    client = CustomVisionPredictionClient(server_url, ApiKeyCredentials(in_headers={"Prediction-key": "mock-key"}))
    result = client.classify_image_with_no_store(str(uuid.uuid4()), "published", io.BytesIO(png))
    assert len(result.predictions) == 1000
    assert result.predictions[0].probability >= result.predictions[1].probability
    assert result.predictions[0].tag_name


def test_huggingface_inference_client(server_url: str, png: bytes) -> None:
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    client = InferenceClient(base_url=f"{server_url}/hf-inference/models/coarse-5", api_key="mock-key")
    default = client.image_classification(png)  # raw bytes, no parameters
    assert len(default) == 5 and abs(sum(e.score for e in default) - 1) < 1e-4
    asked = client.image_classification(png, top_k=3, function_to_apply="softmax")  # JSON, base64 inputs
    assert [e.label for e in asked] == [e.label for e in default[:3]]
    assert asked[0].score == pytest.approx(default[0].score)
    with pytest.raises(HfHubHTTPError) as refused:
        InferenceClient(base_url=f"{server_url}/hf-inference/models/coarse-5", api_key="wrong").image_classification(png)
    assert refused.value.response.status_code == 401


def test_tritonclient_http_infer(server_url: str, png: bytes) -> None:
    import tritonclient.http as triton
    from barapi.mock.model import preprocess

    client = triton.InferenceServerClient(url=server_url.removeprefix("http://"))
    metadata = client.get_model_metadata("coarse-5")
    assert metadata["inputs"][0]["shape"] == [-1, 3, 224, 224] and metadata["outputs"][0]["shape"] == [-1, 5]
    pixels = preprocess(png, 224)[None].repeat(2, axis=0)
    for binary in (True, False):
        tensor = triton.InferInput("image", list(pixels.shape), "FP32")
        tensor.set_data_from_numpy(pixels, binary_data=binary)
        answer = client.infer("coarse-5", [tensor], outputs=[triton.InferRequestedOutput("probabilities", binary_data=binary)])
        probabilities = answer.as_numpy("probabilities")
        assert probabilities.shape == (2, 5) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    labelled = client.infer("coarse-5", [tensor], outputs=[triton.InferRequestedOutput("probabilities", class_count=2)])
    best = labelled.as_numpy("probabilities")[0][0].decode().split(":")
    assert int(best[1]) == int(np.argmax(probabilities[0])) and best[2]
