"""Hugging Face image classification: Inference Endpoints and the serverless router.

One image per request (the task takes one), concurrently. The body is JSON with the image in
base64 and ``parameters`` (``top_k``, ``function_to_apply: softmax``), as huggingface_hub's
InferenceClient sends it when parameters are given. The answer is ``[{"label", "score"}]``.
``top_k`` is the model's label count when its config is published on the Hub (``id2label``),
so every answer carries every label; otherwise ``--top-k`` or the endpoint's default (5), and
the vocabulary is learnt from the answers. A 503 "model is loading" with ``estimated_time`` is
a wait, retried after that time, never a failure.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import httpx
from pydantic import Field

from barapi.adapters.provider import Provider, ProviderOptions
from barapi.adapters.http import HttpClassifier, check_key_transport, checked_url, retry_after_seconds
from barapi.adapters.parsing import error_message, parse_json, probability
from barapi.classifier import Scores
from barapi.errors import AuthenticationError, BadInputError, ConfigError, ProviderError, ProviderResponseError, RateLimited

KEY_VARIABLE = "HF_TOKEN"
ROUTER_URL = "https://router.huggingface.co"
HUB_URL = "https://huggingface.co"
DEFAULT_CONCURRENCY = 8
LOADING_WAIT_MAX_S = 120.0


class HuggingFaceClassifier(HttpClassifier):
    name = "huggingface"
    max_batch = 1  # the image-classification task takes one image per request

    def __init__(
        self,
        client: httpx.Client,
        *,
        key: str,
        model: str,
        endpoint_url: str | None = None,
        base_url: str = ROUTER_URL,
        hub_url: str = HUB_URL,
        top_k: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_per_second: float | None = None,
    ) -> None:
        if not model and not endpoint_url:
            raise ConfigError("Hugging Face needs --model (a Hub model id) or --endpoint-url (a dedicated Inference Endpoint)")
        self.url = checked_url((endpoint_url or f"{base_url.rstrip('/')}/hf-inference/models/{model}").rstrip("/"), "--endpoint-url / --base-url")
        check_key_transport(self.url, variable=KEY_VARIABLE)
        check_key_transport(hub_url, variable=KEY_VARIABLE)  # the config is read with the token too
        super().__init__(client, concurrency=concurrency, rate_per_second=rate_per_second)
        self._key = key
        self.model_id = model or self.url
        self.hub_url = hub_url.rstrip("/")
        self.top_k = top_k
        self._labels: list[str] | None = None

    def __repr__(self) -> str:  # never the key
        return f"HuggingFaceClassifier(model={self.model_id!r}, url={self.url!r})"

    @property
    def cache_scope(self) -> str:
        # top_k changes which labels come back, and is known once the Hub's config is read: it is
        # read first, so a resume or an eval in another process looks the same images up under
        # the same scope as the run that paid for them. The endpoint identifies the deployment.
        self.labels()
        return f"{self.url}|{self.model_id}|top{self.top_k or 'model'}"

    @property
    def unreachable_hint(self) -> str:
        return f"Check --endpoint-url / --base-url (now {self.url}); a paused Inference Endpoint must be resumed first."

    def labels(self) -> list[str] | None:
        """The label set of the model's config on the Hub (``id2label``), when published; the
        answers then carry every label (top_k = their count)."""
        if self._labels is None:
            config = self.sender.metadata(f"{self.hub_url}/{self.model_id}/resolve/main/config.json", {"Authorization": f"Bearer {self._key}"})
            self._labels = published_labels(config)
            if self._labels and self.top_k is None:
                self.top_k = len(self._labels)
        return self._labels or None

    def request(self, images: Sequence[bytes]) -> httpx.Request:
        parameters = {"function_to_apply": "softmax"} | ({"top_k": self.top_k} if self.top_k else {})
        body = json.dumps({"inputs": base64.b64encode(images[0]).decode("ascii"), "parameters": parameters}).encode()
        headers = {"Authorization": f"Bearer {self._key}", "Content-Type": "application/json", "Accept": "application/json"}
        return self.sender.client.build_request("POST", self.url, content=body, headers=headers)

    @staticmethod
    def read(response: httpx.Response) -> list[Scores]:
        payload = parse_json(response)
        if isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], list):
            payload = payload[0]  # some servers nest one image's answer in a batch of one
        if not isinstance(payload, list) or not payload:
            raise ProviderResponseError(f"expected a list of {{label, score}}, got {str(payload)[:200]}")
        scores: Scores = {}
        for element in payload:
            if not isinstance(element, dict) or "label" not in element:
                raise ProviderResponseError(f"malformed classification: {str(element)[:200]}")
            scores[str(element["label"])] = probability(element.get("score"), element["label"])
        return [scores]

    def error(self, response: httpx.Response) -> ProviderError:
        message, status = error_message(response), response.status_code
        common = {"status": status, "request_id": response.headers.get("x-request-id"), "body": response.text[:500]}
        if status == 503 and (loading := loading_seconds(response)) is not None:
            return ProviderError(f"the model is loading ({message}): waiting {loading:.0f} s", retry_after=loading, maybe_billed=False, **common)
        if status in (401, 403):
            return AuthenticationError(f"Hugging Face refused the token ({message}): check {KEY_VARIABLE} (a token with inference permission)", maybe_billed=False, **common)
        if status == 404:
            return ProviderError(f"Hugging Face: {message} — check --model / --endpoint-url", maybe_billed=False, **common)
        if status == 429:
            return RateLimited(f"Hugging Face throttled the request: {message}", retry_after=retry_after_seconds(response), maybe_billed=False, **common)
        if status in (400, 413, 415, 422):
            return BadInputError(f"Hugging Face refused the image: {message}", maybe_billed=False, **common)
        return ProviderError(f"Hugging Face answered HTTP {status}: {message}", maybe_billed=status >= 500, **common)


def loading_seconds(response: httpx.Response) -> float | None:
    """A "model is loading" answer's ``estimated_time``, capped; None for any other 503."""
    try:
        estimated = json.loads(response.content).get("estimated_time")
        return min(max(float(estimated), 1.0), LOADING_WAIT_MAX_S)
    except (ValueError, TypeError, AttributeError):
        return None


def published_labels(config: object) -> list[str]:
    """``id2label`` of a transformers config, in index order; [] when absent or malformed."""
    try:
        id2label = config["id2label"]  # type: ignore[index]
        return [str(id2label[key]) for key in sorted(id2label, key=int)]
    except (TypeError, KeyError, ValueError):
        return []


class Options(ProviderOptions):
    model: str = Field("", description="Hub model id (Hugging Face: served by the router, labels from its config).")
    endpoint_url: str | None = Field(None, description="A dedicated Inference Endpoint's URL (Hugging Face; default: the serverless router).")
    base_url: str = Field(ROUTER_URL, description="Provider endpoint.")
    hub_url: str = Field(HUB_URL, description="Where the model's config.json (its labels) is published (Hugging Face).")
    top_k: int | None = Field(None, ge=1, description="Labels per answer (Hugging Face; default: every label of the model's config).")

    def model_id(self) -> str:
        return self.model or self.endpoint_url or ""


def build(options: Options, client: httpx.Client, key: str | None) -> HuggingFaceClassifier:
    return HuggingFaceClassifier(
        client, key=key or "", model=options.model, endpoint_url=options.endpoint_url, base_url=options.base_url,
        hub_url=options.hub_url, top_k=options.top_k, concurrency=options.concurrency or DEFAULT_CONCURRENCY,
        rate_per_second=options.rate(None),
    )


# Billed by the endpoint-hour (Inference Endpoints) or by compute time (the router): no list
# price per image. `--price-per-hour` with the instance's rate, or --price-per-1k.
PROVIDER = Provider(
    "huggingface", "Hugging Face Inference Endpoints and the serverless router", Options, None, build, key_variable=KEY_VARIABLE,
    key_source="huggingface.co → Settings → Access Tokens (inference permission)",
    typical_flags="--model google/vit-base-patch16-224, or --endpoint-url URL --price-per-hour 0.134",
)
