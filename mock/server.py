"""`barapi mock serve`: a real ImageNet model behind the TorchServe, Clarifai v2, Azure Custom
Vision, Hugging Face and Open Inference Protocol APIs (the last two in ``openinference``), on
loopback, with few-label models over it (``barapi.mock.heads``).

Every served model answers under every protocol: as a TorchServe model name, a Clarifai model
id and an Azure project id (any other project id answers with the ImageNet model). Each
publishes its vocabulary where the real API can: TorchServe's ``GET /models/{name}?customized=true``
(the handler's custom metadata) and Clarifai's ``GET …/models/{id}/output_info``.

Concurrent requests are decoded in their own threads and scored together: a batcher collects
what arrives within a couple of milliseconds into one model call. Faults can be injected
(--fail-rate, --throttle-rate, --latency-ms) so retries and budgets are tested on real sockets.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import queue
import random
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from barapi.errors import BadInputError, ConfigError
from barapi.mock import clarifai, openinference
from barapi.mock.heads import COARSE_MODELS, ServedModel, coarse_model, imagenet_model
from barapi.mock.model import ImageNetModel, preprocess, top_k

# Largest body accepted: TorchServe's default max_request_size is 6.5 MB; a Clarifai request
# carries up to 128 base64 images; Azure takes one image of at most 4 MB (plus multipart framing).
# Hugging Face takes an image (raw or base64 in JSON); an OIP request a batch of FP32 tensors.
MAX_BODY_BYTES = {"torchserve": 6_553_500, "clarifai": 128 * 1024 * 1024, "azure": 4 * 1024 * 1024 + 64 * 1024,
                  "huggingface": 16 * 1024 * 1024, "oip": 64 * 1024 * 1024}
BATCH_WAIT_S = 0.002
MAX_SERVER_BATCH = 16
MODEL_VERSION = "1.0"
RETRY_AFTER_S = 1
# The key the Clarifai and Azure routes expect unless `--api-key` says otherwise.
DEFAULT_API_KEY = "mock-key"
# What each protocol answers to an injected HTTP fault: (status, body) for "fail" and "throttle".
FAULT_ANSWERS: dict[str, dict[str, tuple[int, object]]] = {
    "torchserve": {"fail": (500, {"code": 500, "type": "InternalServerException", "message": "injected failure"}),
                   "throttle": (429, {"code": 429, "type": "ServiceUnavailableException", "message": "injected throttling"})},
    "clarifai": {"fail": (500, {"status": {"code": 21313, "description": "Model prediction failed", "details": "injected failure"}, "outputs": []}),
                 "throttle": (429, {"status": {"code": 11005, "description": "Making too many requests", "details": "injected throttling"}, "outputs": []})},
    "azure": {"fail": (500, {"code": "InternalServerError", "message": "injected failure"}),
              "throttle": (429, {"code": "429", "message": "Rate limit is exceeded. Try again later."})},
    "huggingface": {"fail": (500, {"error": "injected failure"}), "throttle": (429, {"error": "Rate limit reached. Try again later."})},
    "oip": {"fail": (500, {"error": "injected failure"}), "throttle": (429, {"error": "injected throttling"})},
}


class Batcher:
    """Scores preprocessed images in batches on one worker thread."""

    def __init__(self, model: ImageNetModel, max_batch: int = MAX_SERVER_BATCH, wait_s: float = BATCH_WAIT_S) -> None:
        self.model, self.max_batch, self.wait_s = model, max_batch, wait_s
        self._queue: queue.Queue[tuple[np.ndarray, Future]] = queue.Queue()
        threading.Thread(target=self._work, name="batcher", daemon=True).start()

    def submit(self, pixels: np.ndarray) -> np.ndarray:
        future: Future = Future()
        self._queue.put((pixels, future))
        return future.result()

    def _work(self) -> None:
        while True:
            items = [self._queue.get()]
            deadline = time.monotonic() + self.wait_s
            while len(items) < self.max_batch:
                try:
                    items.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
            try:
                probabilities = self.model.probabilities(np.stack([pixels for pixels, _ in items]))
                for (_, future), p in zip(items, probabilities):
                    future.set_result(p)
            except Exception as error:  # noqa: BLE001 - every waiting request must be answered
                for _, future in items:
                    future.set_exception(error)


@dataclass
class Faults:
    """What the server does wrong, and how often (each a fraction of requests, drawn once per
    request): HTTP errors (500; 429 with Retry-After) and transport failures — a response that
    never comes (``timeout``: held for ``hang_s`` then dropped), a connection reset, a body cut
    short of its Content-Length."""

    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    latency_ms: float = 0.0
    seed: int | None = None
    timeout_rate: float = 0.0
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    hang_s: float = 2.0

    def __post_init__(self) -> None:
        if self.fail_rate + self.throttle_rate + self.timeout_rate + self.reset_rate + self.truncate_rate > 1:
            raise ConfigError("the fault rates add up to more than 1: lower them")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def draw(self) -> str | None:
        with self._lock:
            roll = self._random.random()
            for kind, rate in (("fail", self.fail_rate), ("throttle", self.throttle_rate), ("timeout", self.timeout_rate),
                               ("reset", self.reset_rate), ("truncate", self.truncate_rate)):
                if roll < rate:
                    self.injected[kind] += 1
                    return kind
                roll -= rate
        return None


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, host: str, port: int, model: ImageNetModel, *, topk: int | None = None, faults: Faults | None = None,
        api_key: str = DEFAULT_API_KEY, projects: tuple[ServedModel, ...] = (), loading_s: float = 0.0,
    ) -> None:
        super().__init__((host, port), Handler)
        self.model = model
        served = [imagenet_model(model.name, model.classes), *(coarse_model(name) for name in COARSE_MODELS), *projects]
        self.models: dict[str, ServedModel] = {m.name: m for m in served}
        self.batcher = Batcher(model)
        self.topk = topk
        self.faults = faults or Faults()
        self.api_key = api_key
        self.loading_until = time.monotonic() + loading_s  # Hugging Face's routes answer 503 "loading" until then

    def probabilities(self, data: bytes) -> np.ndarray:
        return self.batcher.submit(preprocess(data, self.model.size))

    def probabilities_of(self, pixels: np.ndarray) -> np.ndarray:
        """Already preprocessed (3, size, size) input, as an OIP tensor sends it."""
        return self.batcher.submit(pixels)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up before its answer (its own timeout) is routine, not an error."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    def served(self, name: str) -> ServedModel | None:
        return self.models.get(name)

    def scores(self, data: bytes, model: ServedModel) -> np.ndarray:
        """The served model's probabilities over its labels for one image."""
        return model.scores(self.probabilities(data))[0]

    def classify(self, data: bytes, model: ServedModel) -> dict[str, float]:
        return top_k(self.scores(data, model), model.labels, self.topk)


PREDICTION_PATH = re.compile(r"^/predictions/(?P<model>[^/]+)(?:/(?P<version>[^/]+))?/?$")
DESCRIBE_PATH = re.compile(r"^/models/(?P<model>[^/]+)(?:/(?P<version>[^/]+))?/?$")
# GET /models lists them, with each protocol's prediction route.
ROUTES = {
    "torchserve": "POST /predictions/{model}[/{version}]",
    "clarifai": "POST /v2/[users/{user}/apps/{app}/]models/{model}[/versions/{version}]/outputs",
    "azure": "POST /customvision/v3.{0,1}/prediction/{project}/classify/iterations/{iteration}/image[/nostore]",
    "huggingface": "POST /hf-inference/models/{model} (labels: GET /{model}/resolve/main/config.json)",
    "oip": "POST /v2/models/{model}[/versions/1]/infer (metadata: GET /v2/models/{model})",
}
AZURE_PATH = re.compile(r"^/customvision/v3\.[01]/prediction/(?P<project>[^/]+)/classify/iterations/(?P<iteration>[^/]+)/image(?:/nostore)?/?$", re.IGNORECASE)


class Handler(BaseHTTPRequestHandler):
    server: MockServer
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: a training run sends tens of thousands of requests

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path, _, query = self.path.partition("?")
        if path == "/ping":
            self.send_json(200, {"status": "Healthy"})
        elif path == "/models":
            self.send_json(200, {"models": [{"modelName": name, "modelUrl": f"{name}.mar"} for name in self.server.models], "routes": ROUTES})
        elif path in ("/v2/health/live", "/v2/health/ready"):
            self.send_json(200, {"live": True} if path.endswith("live") else {"ready": True})
        elif match := openinference.OIP_MODEL_PATH.match(path):
            openinference.oip_metadata(self, match)
        elif match := openinference.HF_CONFIG_PATH.match(path):
            openinference.huggingface_config(self, match)
        elif match := DESCRIBE_PATH.match(path):
            self._describe(match, customized="customized=true" in query)
        elif match := clarifai.INFO_PATH.match(path):
            clarifai.output_info(self, match)
        else:
            self._not_found()

    def _describe(self, match: re.Match, customized: bool) -> None:
        """TorchServe's management API describes a model as a one-element list; with
        ?customized=true it adds the handler's metadata, here the model's labels."""
        model = self.server.served(match["model"])
        if model is None:
            self.send_json(404, {"code": 404, "type": "ModelNotFoundException", "message": f"Model not found: {match['model']}"})
            return
        description = {
            "modelName": model.name, "modelVersion": MODEL_VERSION, "modelUrl": f"{model.name}.mar", "runtime": "python",
            "minWorkers": 1, "maxWorkers": 1, "batchSize": 1, "maxBatchDelay": 100, "loadedAtStartup": True,
            "workers": [{"id": "9000", "status": "READY", "gpu": False}],
        }
        if customized:
            description["customizedMetadata"] = json.dumps({"labels": model.labels})
        self.send_json(200, [description])

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        routes = (("torchserve", PREDICTION_PATH, self._torchserve), ("clarifai", clarifai.PATH, lambda m, b: clarifai.predict(self, m, b)), ("azure", AZURE_PATH, self._azure),
                  ("huggingface", openinference.HF_PATH, lambda m, b: openinference.huggingface(self, m, b)),
                  ("oip", openinference.OIP_INFER_PATH, lambda m, b: openinference.oip_infer(self, m, b)))
        for protocol, pattern, route in routes:
            match = pattern.match(path)
            if match:
                body = self._body(MAX_BODY_BYTES[protocol])
                if body is not None:
                    route(match, body)
                return
        self._body(MAX_BODY_BYTES["torchserve"])  # drain, so the connection stays usable
        self._not_found()

    # -- TorchServe --------------------------------------------------------------------------
    def _torchserve(self, match: re.Match, body: bytes) -> None:
        if self.answered_fault("torchserve"):
            return
        name, version = match["model"], match["version"]
        model = self.server.served(name)
        if model is None:
            self.send_json(404, {"code": 404, "type": "ModelNotFoundException", "message": f"Model not found: {name}"})
            return
        if version not in (None, MODEL_VERSION):
            self.send_json(404, {"code": 404, "type": "ModelVersionNotFoundException", "message": f"Model version: {version} does not exist for model: {name}"})
            return
        image = self._image_from(body, "data")
        try:
            self.send_json(200, self.server.classify(image, model))
        except BadInputError:
            self.send_json(503, {"code": 503, "type": "InternalServerException", "message": "Prediction failed"})

    # -- Azure Custom Vision -----------------------------------------------------------------
    def _azure(self, match: re.Match, body: bytes) -> None:
        if self.headers.get("Prediction-Key") != self.server.api_key:
            self.send_json(401, {"code": "Unauthorized", "message": "Access denied due to invalid subscription key or wrong API endpoint."})
            return
        if self.answered_fault("azure"):
            return
        image = self._image_from(body, "imageData")
        model = self.server.served(match["project"]) or self.server.served(self.server.model.name)
        try:
            probabilities = self.server.scores(image, model)
        except BadInputError:
            self.send_json(400, {"code": "BadRequestImageFormat", "message": "Bad Request Image Format, Uri: " + uuid.uuid4().hex})
            return
        classes = model.labels
        order = np.argsort(-probabilities, kind="stable")
        self.send_json(200, {
            "id": str(uuid.uuid4()), "project": match["project"], "iteration": match["iteration"], "created": clarifai.now(),
            "predictions": [{"probability": float(probabilities[i]), "tagId": str(uuid.UUID(int=int(i) + 1)), "tagName": classes[i]} for i in order],
        })

    # -- helpers -----------------------------------------------------------------------------
    def _body(self, limit: int) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            self.send_json(413, {"code": 413, "type": "RequestTooLargeException", "message": f"request larger than {limit} bytes"})
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _image_from(self, body: bytes, field: str) -> bytes:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == field:
                return part.get_payload(decode=True) or b""
        return b""

    def answered_fault(self, protocol: str) -> bool:
        """Whether an injected fault answered this request (in ``protocol``'s words) or dropped it."""
        fault = self._inject_fault()
        if fault in ("fail", "throttle"):
            status, payload = FAULT_ANSWERS[protocol][fault]
            self.send_json(status, payload, {"Retry-After": str(RETRY_AFTER_S)} if fault == "throttle" else None)
        return fault is not None

    def _inject_fault(self) -> str | None:
        """An HTTP fault for the route to answer ("fail", "throttle"), or None. Transport faults
        are carried out here and returned as "dropped": the route then sends nothing."""
        faults = self.server.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        fault = faults.draw()
        if fault == "timeout":
            time.sleep(faults.hang_s)
        elif fault == "reset":
            # SO_LINGER 0: close() sends RST instead of FIN, as a crashed proxy does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "4096")
            self.end_headers()
            self.wfile.write(b'{"tabby": 0.4, "tiger c')
        else:
            return fault
        self.wfile.flush()
        self.close_connection = True
        if fault != "reset":
            self.connection.shutdown(socket.SHUT_RDWR)
        return "dropped"

    def _not_found(self) -> None:
        self.send_json(404, {"code": 404, "type": "ResourceNotFoundException", "message": "Requested resource is not found, please refer to API document."})

    def send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json", headers)

    def send_body(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
