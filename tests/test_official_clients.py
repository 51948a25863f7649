"""The local server answers closely enough to the real services that their official Python
clients parse it: clarifai-grpc (JSON channel) and azure-cognitiveservices-vision-customvision."""

import io
import uuid

import numpy as np
import pytest

from barapi.program import Geometry, Program, initial_parameters

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
