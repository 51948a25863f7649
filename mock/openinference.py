"""The local server's newer protocols: Hugging Face's image-classification task (Inference
Endpoints and the serverless router) and the Open Inference Protocol v2 (KServe, Triton),
over the same served models as the older three.

- Hugging Face: ``POST /hf-inference/models/{model}`` (the router's path) takes raw image bytes,
  or JSON ``{"inputs": base64, "parameters": {"top_k", "function_to_apply"}}``, answers
  ``[{"label", "score"}]`` (top 5 unless ``top_k`` says otherwise) and, while the server is
  "loading" (``--loading-s``), 503 ``{"error", "estimated_time"}``. A model's labels are
  published as the Hub publishes them: ``GET /{model}/resolve/main/config.json`` (``id2label``).
- Open Inference Protocol: ``GET /v2/models/{name}`` (metadata), ``POST
  /v2/models/{name}[/versions/{v}]/infer`` with JSON or Triton's binary tensor extension. The
  input ``image`` is FP32 ``[n, 3, s, s]`` after the model's own preprocessing (bicubic resize to
  s/0.875, centre crop, (x − 0.5)/0.5) or BYTES (encoded images); the output ``probabilities`` is
  FP32 ``[n, labels]``, or with Triton's classification extension BYTES ``"score:index:label"``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import time
from typing import TYPE_CHECKING

import numpy as np

from barapi.errors import BadInputError
from barapi.adapters.oip import byte_strings
from barapi.mock.model import preprocess, top_k

if TYPE_CHECKING:
    from barapi.mock.heads import ServedModel
    from barapi.mock.handling import Handler

HF_PATH = re.compile(r"^/hf-inference/models/(?P<model>.+?)/?$")
HF_CONFIG_PATH = re.compile(r"^/(?P<model>.+?)/resolve/main/config\.json$")
OIP_INFER_PATH = re.compile(r"^/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer/?$")
OIP_MODEL_PATH = re.compile(r"^/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<ready>/ready)?/?$")
HF_DEFAULT_TOP_K = 5  # transformers' image-classification pipeline
OIP_VERSION = "1"
OIP_INPUT, OIP_OUTPUT = "image", "probabilities"
HEADER_LENGTH = "Inference-Header-Content-Length"  # Triton's binary tensor extension
NUMPY_TYPES = {"FP32": np.float32, "FP64": np.float64, "UINT8": np.uint8}


# -- Hugging Face -----------------------------------------------------------------------------
def huggingface(handler: Handler, match: re.Match, body: bytes) -> None:
    if handler.headers.get("Authorization") != f"Bearer {handler.server.api_key}":
        handler.send_json(401, {"error": "Invalid credentials in Authorization header"})
        return
    if handler.answered_fault("huggingface"):
        return
    model = handler.server.served(match["model"])
    if model is None:
        handler.send_json(404, {"error": f"Model {match['model']} does not exist"})
        return
    loading = handler.server.loading_until - time.monotonic()
    if loading > 0:
        handler.send_json(503, {"error": f"Model {model.name} is currently loading", "estimated_time": round(loading, 3)})
        return
    image, parameters = body, {}
    if handler.headers.get("Content-Type", "").startswith("application/json"):
        try:
            request = json.loads(body)
            image = base64.b64decode(request["inputs"], validate=True)
            parameters = request.get("parameters") or {}
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            handler.send_json(400, {"error": f"invalid request: {error}"})
            return
    if parameters.get("function_to_apply") not in (None, "softmax"):
        handler.send_json(400, {"error": "function_to_apply: this server answers probabilities (softmax) only"})
        return
    try:
        scores = top_k(handler.server.scores(image, model), model.labels, int(parameters.get("top_k") or HF_DEFAULT_TOP_K))
    except BadInputError:
        handler.send_json(400, {"error": "cannot identify image file"})
        return
    handler.send_json(200, [{"label": label, "score": score} for label, score in scores.items()])


def huggingface_config(handler: Handler, match: re.Match) -> None:
    model = handler.server.served(match["model"])
    if model is None:
        handler.send_json(404, {"error": "Repository Not Found"}, {"X-Error-Code": "RepoNotFound"})
        return
    handler.send_json(200, {"model_type": "efficientnet", "num_labels": len(model.labels),
                            "id2label": {str(i): label for i, label in enumerate(model.labels)},
                            "label2id": {label: i for i, label in enumerate(model.labels)}})


# -- Open Inference Protocol ------------------------------------------------------------------
def oip_metadata(handler: Handler, match: re.Match) -> None:
    model = oip_model(handler, match)
    if model is None:
        return
    if match["ready"]:
        handler.send_json(200, {"name": model.name, "ready": True})
        return
    size = handler.server.model.size
    handler.send_json(200, {
        "name": model.name, "versions": [OIP_VERSION], "platform": "onnxruntime_onnx",
        "inputs": [{"name": OIP_INPUT, "datatype": "FP32", "shape": [-1, 3, size, size]}],
        "outputs": [{"name": OIP_OUTPUT, "datatype": "FP32", "shape": [-1, len(model.labels)]}],
    })


def oip_model(handler: Handler, match: re.Match) -> ServedModel | None:
    model = handler.server.served(match["model"])
    if model is None:
        handler.send_json(404, {"error": f"Request for unknown model: '{match['model']}' is not found"})
    elif match["version"] not in (None, OIP_VERSION):
        handler.send_json(404, {"error": f"Request for unknown model: '{model.name}' version {match['version']} is not found"})
        return None
    return model


def oip_infer(handler: Handler, match: re.Match, body: bytes) -> None:
    if handler.answered_fault("oip"):
        return
    model = oip_model(handler, match)
    if model is None:
        return
    try:
        request, tensors = read_request(body, handler.headers.get(HEADER_LENGTH))
        images = input_images(request, tensors, handler.server.model.size)
        probabilities = np.stack([handler.server.probabilities_of(pixels) for pixels in images])
    except (ValueError, KeyError, TypeError, IndexError, struct.error, BadInputError) as error:
        handler.send_json(400, {"error": f"invalid inference request: {error}"})
        return
    scores = model.scores(probabilities).astype(np.float32)
    requested = request.get("outputs") or [{"name": OIP_OUTPUT}]
    outputs, blobs = [], []
    for output in requested:
        if output.get("name") != OIP_OUTPUT:
            handler.send_json(400, {"error": f"unexpected inference output '{output.get('name')}' for model '{model.name}'"})
            return
        parameters = output.get("parameters") or {}
        classes = int(parameters.get("classification") or 0)
        if classes:
            strings = [[f"{s[i]:.6f}:{i}:{model.labels[i]}".encode() for i in np.argsort(-s, kind="stable")[:classes]] for s in scores]
            described = {"name": OIP_OUTPUT, "datatype": "BYTES", "shape": [len(scores), min(classes, scores.shape[1])]}
            values: object = strings
            blob = b"".join(struct.pack("<I", len(s)) + s for row in strings for s in row)
        else:
            described = {"name": OIP_OUTPUT, "datatype": "FP32", "shape": list(scores.shape)}
            values, blob = scores, scores.tobytes()
        if parameters.get("binary_data", False):
            described["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            described["data"] = [s.decode() for row in values for s in row] if classes else scores.ravel().tolist()
        outputs.append(described)
    answer = {"model_name": model.name, "model_version": OIP_VERSION, "outputs": outputs} | ({"id": request["id"]} if "id" in request else {})
    header = json.dumps(answer).encode()
    if not blobs:
        handler.send_json(200, answer)
        return
    handler.send_body(200, header + b"".join(blobs), "application/octet-stream", {HEADER_LENGTH: str(len(header))})


def read_request(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """The JSON part and, with the binary extension, the raw tensors after it."""
    length = int(header_length) if header_length else len(body)
    request = json.loads(body[:length])
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or len(request["inputs"]) != 1:
        raise ValueError(f"expected one input, '{OIP_INPUT}'")
    return request, body[length:]


def input_images(request: dict, tensors: bytes, size: int) -> list[np.ndarray]:
    """The request's images as the model's (3, size, size) inputs."""
    tensor = request["inputs"][0]
    if tensor.get("name") != OIP_INPUT:
        raise ValueError(f"unexpected inference input '{tensor.get('name')}'")
    shape, datatype = [int(n) for n in tensor["shape"]], tensor["datatype"]
    binary_size = (tensor.get("parameters") or {}).get("binary_data_size")
    raw = tensors[: int(binary_size)] if binary_size is not None else None
    if datatype == "BYTES":
        images = byte_strings(raw, None) if raw is not None else [base64.b64decode(item) for item in tensor.get("data") or []]
        return [preprocess(image, size) for image in images]
    if datatype not in NUMPY_TYPES or shape[1:] != [3, size, size]:
        raise ValueError(f"input '{OIP_INPUT}' must be FP32 [n, 3, {size}, {size}] or BYTES, got {datatype} {shape}")
    values = np.frombuffer(raw, dtype=NUMPY_TYPES[datatype]) if raw is not None else np.asarray(tensor["data"], dtype=NUMPY_TYPES[datatype])
    return list(values.reshape(shape).astype(np.float32))
