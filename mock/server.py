"""`barapi mock serve`: the TorchServe inference API over a real ImageNet model, on loopback.

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
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from barapi.errors import BadInputError
from barapi.mock.model import ImageNetModel, preprocess, top_k

# Largest body accepted; TorchServe's default max_request_size is 6.5 MB.
MAX_BODY_BYTES = 6_553_500
BATCH_WAIT_S = 0.002
MAX_SERVER_BATCH = 16
MODEL_VERSION = "1.0"
RETRY_AFTER_S = 1


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
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    latency_ms: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        with self._lock:
            roll = self._random.random()
        if roll < self.fail_rate:
            return "fail"
        if roll < self.fail_rate + self.throttle_rate:
            return "throttle"
        return None


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, model: ImageNetModel, *, topk: int | None = None, faults: Faults | None = None) -> None:
        super().__init__((host, port), Handler)
        self.model = model
        self.batcher = Batcher(model)
        self.topk = topk
        self.faults = faults or Faults()
        self.requests_served = 0

    def classify(self, data: bytes) -> dict[str, float]:
        probabilities = self.batcher.submit(preprocess(data, self.model.size))
        return top_k(probabilities, self.model.classes, self.topk)


PREDICTION_PATH = re.compile(r"^/predictions/(?P<model>[^/]+)(?:/(?P<version>[^/]+))?/?$")


class Handler(BaseHTTPRequestHandler):
    server: MockServer
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: a training run sends tens of thousands of requests

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?")[0]
        if path == "/ping":
            self._json(200, {"status": "Healthy"})
        elif path == "/models":
            name = self.server.model.name
            self._json(200, {"models": [{"modelName": name, "modelUrl": f"{name}.mar"}]})
        else:
            self._not_found()

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        if body is None:
            return
        match = PREDICTION_PATH.match(self.path.split("?")[0])
        if not match:
            self._not_found()
            return
        if self._inject_fault():
            return
        name, version = match["model"], match["version"]
        if name != self.server.model.name:
            self._json(404, {"code": 404, "type": "ModelNotFoundException", "message": f"Model not found: {name}"})
            return
        if version not in (None, MODEL_VERSION):
            self._json(404, {"code": 404, "type": "ModelVersionNotFoundException", "message": f"Model version: {version} does not exist for model: {name}"})
            return
        image = self._image_from(body, "data")
        try:
            self._json(200, self.server.classify(image))
        except BadInputError:
            self._json(503, {"code": 503, "type": "InternalServerException", "message": "Prediction failed"})

    # -- helpers -----------------------------------------------------------------------------
    def _body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._json(413, {"code": 413, "type": "RequestTooLargeException", "message": f"request larger than {MAX_BODY_BYTES} bytes"})
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

    def _inject_fault(self) -> bool:
        faults = self.server.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        fault = faults.draw()
        if fault == "fail":
            self._json(500, {"code": 500, "type": "InternalServerException", "message": "injected failure"})
        elif fault == "throttle":
            self._json(429, {"code": 429, "type": "ServiceUnavailableException", "message": "injected throttling"}, {"Retry-After": str(RETRY_AFTER_S)})
        return fault is not None

    def _not_found(self) -> None:
        self._json(404, {"code": 404, "type": "ResourceNotFoundException", "message": "Requested resource is not found, please refer to API document."})

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.server.requests_served += 1
