"""The local server's Clarifai v2 routes: ``POST …/models/{id}[/versions/{v}]/outputs`` (up to 128
base64 images, ``output_config`` honoured) and ``GET …/output_info`` (the model's concepts), with
Clarifai's status codes and its ``Authorization: Key`` check."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
import zlib
from typing import TYPE_CHECKING

from barapi.errors import BadInputError
from barapi.mock.model import top_k

if TYPE_CHECKING:
    from barapi.mock.heads import ServedModel
    from barapi.mock.handling import Handler

CLARIFAI_MODELS = ("general-image-recognition",)
CLARIFAI_DEFAULT_CONCEPTS = 20
CLARIFAI_MAX_INPUTS = 128
PATH = re.compile(r"^/v2/(?:users/(?P<user>[^/]+)/apps/(?P<app>[^/]+)/)?models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?/outputs/?$")
INFO_PATH = re.compile(r"^/v2/(?:users/(?P<user>[^/]+)/apps/(?P<app>[^/]+)/)?models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?/output_info/?$")


def answer_status(handler: Handler, http: int, code: int, description: str, details: str = "", headers: dict[str, str] | None = None) -> None:
    handler.send_json(http, {"status": {"code": code, "description": description, "details": details, "req_id": uuid.uuid4().hex}, "outputs": []}, headers)


def authorised(handler: Handler) -> bool:
    authorization = handler.headers.get("Authorization", "")
    if not authorization:
        answer_status(handler, 401, 11009, "API key not found", "Missing Authorization header: use 'Authorization: Key <PAT>'")
        return False
    if authorization != f"Key {handler.server.api_key}":
        answer_status(handler, 401, 11008, "Invalid API key or Invalid API key/application pair")
        return False
    return True


def predict(handler: Handler, match: re.Match, body: bytes) -> None:
    if not authorised(handler):
        return
    if handler.answered_fault("clarifai"):
        return
    model = served_model(handler, match["model"])
    if model is None:
        return
    try:
        request = json.loads(body)
        inputs = request["inputs"]
        if not isinstance(inputs, list) or not inputs:
            raise ValueError("inputs must be a non-empty list")
        output_config = ((request.get("model") or {}).get("output_info") or {}).get("output_config") or {}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        answer_status(handler, 400, 11102, "Invalid request", str(error))
        return
    if len(inputs) > CLARIFAI_MAX_INPUTS:
        answer_status(handler, 400, 11102, "Invalid request", f"at most {CLARIFAI_MAX_INPUTS} inputs per request")
        return
    outputs = [output(handler, item, output_config, model) for item in inputs]
    failed = sum(o["status"]["code"] != 10000 for o in outputs)
    if failed == len(outputs):
        status = {"code": 10020, "description": "Failure"}
        http = 400
    elif failed:
        status, http = {"code": 10010, "description": "Mixed Success"}, 200
    else:
        status, http = {"code": 10000, "description": "Ok"}, 200
    handler.send_json(http, {"status": status | {"req_id": uuid.uuid4().hex}, "outputs": outputs})


def served_model(handler: Handler, name: str) -> ServedModel | None:
    """The served model a Clarifai model id names (answering 404 if none)."""
    model = handler.server.served(handler.server.model.name if name in CLARIFAI_MODELS else name)
    if model is None:
        answer_status(handler, 404, 21200, "Model does not exist", f"Model '{name}' not found")
    return model


def output_info(handler: Handler, match: re.Match) -> None:
    """GetModelOutputInfo: the model with every concept it can predict."""
    if not authorised(handler):
        return
    model = served_model(handler, match["model"])
    if model is None:
        return
    concepts = [concept(name) for name in model.labels]
    handler.send_json(200, {
        "status": {"code": 10000, "description": "Ok", "req_id": uuid.uuid4().hex},
        "model": {"id": match["model"], "app_id": match["app"] or "main", "user_id": match["user"] or "clarifai",
                  "output_info": {"data": {"concepts": concepts}, "output_config": {}, "message": "Show output_info with: GET /models/{model_id}/output_info"}},
    })


def output(handler: Handler, item: object, config: dict, model: ServedModel) -> dict:
    output = {"id": uuid.uuid4().hex, "created_at": now(), "model": {"id": model.name, "app_id": "main", "user_id": "clarifai"}}
    try:
        image = base64.b64decode(item["data"]["image"]["base64"], validate=True)  # type: ignore[index]
        probabilities = handler.server.scores(image, model)
    except (KeyError, TypeError, ValueError, binascii.Error, BadInputError):
        return output | {"status": {"code": 30002, "description": "Download failed or invalid image"}, "data": {}}
    classes = model.labels
    selected = config.get("select_concepts") or []
    if selected:
        index = {name: i for i, name in enumerate(classes)}
        names = [c.get("name") for c in selected if isinstance(c, dict)]
        chosen = [(n, float(probabilities[index[n]])) for n in names if n in index]
    else:
        limit = int(config.get("max_concepts") or CLARIFAI_DEFAULT_CONCEPTS)
        minimum = float(config.get("min_value") or 0.0)
        chosen = [(n, v) for n, v in top_k(probabilities, classes, min(max(limit, 1), 200)).items() if v >= minimum]
    concepts = [concept(n) | {"value": v} for n, v in chosen]
    return output | {"status": {"code": 10000, "description": "Ok"}, "input": {"id": uuid.uuid4().hex}, "data": {"concepts": concepts}}


def concept(name: str) -> dict:
    return {"id": f"ai_{zlib.crc32(name.encode()):08x}", "name": name, "app_id": "main"}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
