"""Clarifai v2 predict, over its JSON REST API.

Up to 128 images per request; once the label mapping is fixed, the request asks for exactly the
mapped concepts (``select_concepts``) so top-k truncation never hides one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence

import httpx
from pydantic import Field

from barapi.adapters.provider import Provider, ProviderOptions
from barapi.adapters.http import HttpClassifier, check_key_transport, retry_after_seconds
from barapi.adapters.parsing import parse_json, probability
from barapi.classifier import Scores
from barapi.errors import AuthenticationError, BadInputError, ProviderError, ProviderResponseError, RateLimited

KEY_VARIABLE = "CLARIFAI_PAT"
DEFAULT_BASE_URL = "https://api.clarifai.com"
DEFAULT_MODEL = "general-image-recognition"
MAX_INPUTS_PER_REQUEST = 128
MAX_CONCEPTS = 200
DEFAULT_RATE_PER_SECOND = 15.0  # Clarifai's default account limit
DEFAULT_CONCURRENCY = 4

STATUS_OK = 10000
STATUS_MIXED = 10010
STATUS_THROTTLED = 11005
STATUS_KEY_INVALID = 11008
STATUS_KEY_MISSING = 11009
STATUS_MODEL_MISSING = 21200
BAD_INPUT_STATUSES = range(30000, 40000)


class ClarifaiClassifier(HttpClassifier):
    name = "clarifai"
    max_batch = MAX_INPUTS_PER_REQUEST

    def __init__(
        self,
        client: httpx.Client,
        *,
        pat: str,
        model: str = DEFAULT_MODEL,
        version: str | None = None,
        user_id: str = "clarifai",
        app_id: str = "main",
        base_url: str = DEFAULT_BASE_URL,
        max_concepts: int = MAX_CONCEPTS,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_per_second: float | None = DEFAULT_RATE_PER_SECOND,
    ) -> None:
        check_key_transport(base_url, variable=KEY_VARIABLE)
        super().__init__(client, concurrency=concurrency, rate_per_second=rate_per_second)
        self.base_url = base_url.rstrip("/")
        self._pat = pat
        self.model_id, self.version, self.user_id, self.app_id = model, version, user_id, app_id
        self.max_concepts = max(1, min(max_concepts, MAX_CONCEPTS))
        self.selected: list[str] = []
        self._labels: list[str] | None = None

    def __repr__(self) -> str:  # never the key
        return f"ClarifaiClassifier(model={self.model_id!r}, base_url={self.base_url!r})"

    @property
    def cache_scope(self) -> str:
        selected = hashlib.sha256(json.dumps(self.selected).encode()).hexdigest()[:16] if self.selected else "-"
        return f"{self.base_url}|{self.user_id}/{self.app_id}|{self.model_id}|{self.version or ''}|{self.max_concepts}|{selected}"

    def labels(self) -> list[str] | None:
        """The model's concepts, from GetModelOutputInfo (free, before any prediction)."""
        if self._labels is None:
            described = self.sender.metadata(self.info_url, {"Authorization": f"Key {self._pat}"})
            self._labels = output_info_concepts(described)
        return self._labels or None

    def restrict_to(self, labels: Sequence[str]) -> None:
        """Ask for exactly these concepts from now on (the mapped ones)."""
        self.selected = sorted(labels)

    @property
    def url(self) -> str:
        return f"{self.base_url}/v2/models/{self.model_id}{self._version_path}/outputs"

    @property
    def info_url(self) -> str:
        # A GET has no body to carry user_app_id: the owner goes in the path.
        return f"{self.base_url}/v2/users/{self.user_id}/apps/{self.app_id}/models/{self.model_id}{self._version_path}/output_info"

    @property
    def _version_path(self) -> str:
        return f"/versions/{self.version}" if self.version else ""

    def request_body(self, images: Sequence[bytes]) -> dict:
        output_config: dict = {"max_concepts": self.max_concepts, "min_value": 0.0}
        if self.selected:
            output_config = {"select_concepts": [{"name": n, "value": 0.0} for n in self.selected]}
        return {
            "user_app_id": {"user_id": self.user_id, "app_id": self.app_id},
            "inputs": [{"data": {"image": {"base64": base64.b64encode(image).decode("ascii")}}} for image in images],
            "model": {"output_info": {"output_config": output_config}},
        }

    def request(self, images: Sequence[bytes]) -> httpx.Request:
        return self.sender.client.build_request("POST", self.url, json=self.request_body(images), headers={"Authorization": f"Key {self._pat}"})

    @property
    def unreachable_hint(self) -> str:
        return f"Check --base-url (now {self.base_url})."

    def read(self, response: httpx.Response) -> list[Scores]:
        payload = parse_json(response)
        if not isinstance(payload, dict) or not isinstance(payload.get("outputs"), list):
            raise ProviderResponseError(f"Clarifai answer without outputs: {str(payload)[:200]}")
        code = _status_code(payload)
        results = []
        for index, output in enumerate(payload["outputs"]):
            if not isinstance(output, dict):
                raise ProviderResponseError(f"output {index} is not an object")
            output_code = _status_code(output) if code == STATUS_MIXED else STATUS_OK
            if output_code != STATUS_OK:
                raise BadInputError(f"Clarifai refused image {index} of the request: {_description(output)}", maybe_billed=True)
            concepts = (output.get("data") or {}).get("concepts")
            if not isinstance(concepts, list) or not concepts:
                raise ProviderResponseError(f"output {index} has no concepts")
            results.append({str(c["name"]): probability(c.get("value"), c.get("name")) for c in concepts})
        if code not in (STATUS_OK, STATUS_MIXED):
            raise ProviderResponseError(f"Clarifai answered status {code} with HTTP {response.status_code}")
        return results

    def error(self, response: httpx.Response) -> ProviderError:
        try:
            payload = json.loads(response.content)
        except ValueError:
            payload = {}
        code = _status_code(payload) if isinstance(payload, dict) else None
        text = _description(payload) if isinstance(payload, dict) else response.text[:200]
        status = payload.get("status") if isinstance(payload, dict) else None
        request_id = status.get("req_id") if isinstance(status, dict) else None
        common = {"status": response.status_code, "request_id": request_id, "body": response.text[:500]}
        if code == STATUS_THROTTLED or response.status_code == 429:
            return RateLimited(f"Clarifai throttled the request: {text}", retry_after=retry_after_seconds(response), maybe_billed=False, **common)
        if code in (STATUS_KEY_INVALID, STATUS_KEY_MISSING) or response.status_code in (401, 403):
            return AuthenticationError(f"Clarifai refused the key ({text}): check {KEY_VARIABLE}", maybe_billed=False, **common)
        if code == STATUS_MODEL_MISSING or response.status_code == 404:
            return ProviderError(f"Clarifai has no model {self.model_id!r} for {self.user_id}/{self.app_id} ({text}): check --model/--user-id/--app-id", maybe_billed=False, **common)
        if code is not None and code in BAD_INPUT_STATUSES:
            return BadInputError(f"Clarifai refused an image: {text}", maybe_billed=False, **common)
        return ProviderError(f"Clarifai answered HTTP {response.status_code}: {text}", maybe_billed=response.status_code >= 500, **common)


def output_info_concepts(payload: object) -> list[str]:
    """Concept names from a GetModelOutputInfo answer (``model.output_info.data.concepts``)."""
    try:
        concepts = payload["model"]["output_info"]["data"]["concepts"]  # type: ignore[index]
        return [str(c["name"]) for c in concepts]
    except (TypeError, KeyError):
        return []


def _status_code(payload: dict) -> int | None:
    status = payload.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    return code if isinstance(code, int) else None


def _description(payload: dict) -> str:
    status = payload.get("status") if isinstance(payload, dict) else None
    if not isinstance(status, dict):
        return "no status"
    return f"{status.get('description', '')} {status.get('details', '')} ({status.get('code')})".strip()


class Options(ProviderOptions):
    base_url: str | None = Field(None, description="Provider endpoint (Clarifai: CLARIFAI_API_BASE or https://api.clarifai.com by default).")
    model: str = Field(DEFAULT_MODEL, description="Model name at the provider.")
    model_version: str | None = Field(None, description="Model version, if the provider has versions.")
    user_id: str = Field("clarifai", description="Clarifai user owning the model.")
    app_id: str = Field("main", description="Clarifai app holding the model.")
    max_concepts: int = Field(MAX_CONCEPTS, ge=1, le=MAX_CONCEPTS, description="Clarifai concepts per answer before the mapping is fixed.")

    def model_id(self) -> str:
        return self.model


def build(options: Options, client: httpx.Client, key: str | None) -> ClarifaiClassifier:
    return ClarifaiClassifier(
        client, pat=key or "", model=options.model, version=options.model_version, user_id=options.user_id, app_id=options.app_id,
        base_url=options.base_url or os.environ.get("CLARIFAI_API_BASE") or DEFAULT_BASE_URL, max_concepts=options.max_concepts,
        concurrency=options.concurrency or DEFAULT_CONCURRENCY, rate_per_second=options.rate(DEFAULT_RATE_PER_SECOND),
    )


# Per image ("operation"), batched or not; the paper's Table 4 rows match $1.20 / 1,000.
PROVIDER = Provider(
    "clarifai", "Clarifai v2", Options, 1.20, build, key_variable=KEY_VARIABLE,
    key_source="clarifai.com → Settings → Security → Personal Access Token", typical_flags="--model general-image-recognition",
)
