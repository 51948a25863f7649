"""Azure Custom Vision prediction, v3.0 and v3.1.

One image per request, sent to ``/image/nostore`` by default (Azure keeps nothing and allows 20
transactions/s instead of 10), concurrently within the client-side rate limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx
from pydantic import Field

from barapi.adapters.provider import Provider, ProviderOptions
from barapi.adapters.http import HttpClassifier, check_key_transport, retry_after_seconds
from barapi.adapters.parsing import parse_json, probability
from barapi.classifier import Scores
from barapi.errors import AuthenticationError, BadInputError, ConfigError, ProviderError, ProviderResponseError, RateLimited

KEY_VARIABLE = "AZURE_CV_PREDICTION_KEY"
API_VERSIONS = ("3.0", "3.1")
DEFAULT_RATE_PER_SECOND = 10.0  # S0 tier
DEFAULT_CONCURRENCY = 8
MAX_IMAGE_BYTES = 4 * 1024 * 1024
BAD_IMAGE_CODES = {"BadRequestImageFormat", "BadRequestImageSizeBytes", "BadRequestImageDimensions", "BadRequestImageUrl", "BadRequestImageStream"}


class AzureCustomVisionClassifier(HttpClassifier):
    name = "azure"
    max_batch = 1  # one image per prediction request

    def __init__(
        self,
        client: httpx.Client,
        *,
        key: str,
        endpoint: str,
        project_id: str,
        iteration: str,
        api_version: str = "3.1",
        store_images: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_per_second: float | None = DEFAULT_RATE_PER_SECOND,
    ) -> None:
        if api_version not in API_VERSIONS:
            raise ConfigError(f"--api-version must be one of {', '.join(API_VERSIONS)}")
        if not endpoint or not project_id or not iteration:
            raise ConfigError("Azure Custom Vision needs --endpoint, --project-id and --iteration (the published iteration name)")
        check_key_transport(endpoint, variable=KEY_VARIABLE)
        super().__init__(client, concurrency=concurrency, rate_per_second=rate_per_second)
        self.endpoint = endpoint.rstrip("/")
        self._key = key
        self.project_id, self.iteration, self.api_version = project_id, iteration, api_version
        self.store_images = store_images
        self.model_id = f"{project_id}/{iteration}"

    def __repr__(self) -> str:  # never the key
        return f"AzureCustomVisionClassifier(model={self.model_id!r}, endpoint={self.endpoint!r})"

    @property
    def cache_scope(self) -> str:
        # The stored/nostore choice and API version do not change the answer.
        return f"{self.endpoint}|{self.model_id}"

    def labels(self) -> None:
        return None  # every answer carries every tag, so the vocabulary is seen on first use

    @property
    def url(self) -> str:
        suffix = "" if self.store_images else "/nostore"
        return f"{self.endpoint}/customvision/v{self.api_version}/Prediction/{self.project_id}/classify/iterations/{self.iteration}/image{suffix}"

    def check(self, images: Sequence[bytes]) -> None:
        for index, image in enumerate(images):
            if len(image) > MAX_IMAGE_BYTES:
                raise BadInputError(f"image {index} is {len(image):,} bytes; Azure accepts at most {MAX_IMAGE_BYTES:,}", maybe_billed=False)

    def request(self, images: Sequence[bytes]) -> httpx.Request:
        headers = {"Prediction-Key": self._key, "Content-Type": "application/octet-stream"}
        return self.sender.client.build_request("POST", self.url, content=images[0], headers=headers)

    @property
    def unreachable_hint(self) -> str:
        return f"Check --endpoint (now {self.endpoint})."

    @staticmethod
    def read(response: httpx.Response) -> list[Scores]:
        payload = parse_json(response)
        predictions = payload.get("predictions") if isinstance(payload, dict) else None
        if not isinstance(predictions, list) or not predictions:
            raise ProviderResponseError(f"Azure answer without predictions: {str(payload)[:200]}")
        scores: Scores = {}
        for p in predictions:
            if not isinstance(p, dict) or "tagName" not in p:
                raise ProviderResponseError(f"malformed prediction: {str(p)[:200]}")
            scores[str(p["tagName"])] = probability(p.get("probability"), p["tagName"])
        return [scores]

    def error(self, response: httpx.Response) -> ProviderError:
        try:
            payload = json.loads(response.content)
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        code, message = str(payload.get("code", "")), str(payload.get("message", response.text[:200]))
        common = {"status": response.status_code, "request_id": response.headers.get("apim-request-id"), "body": response.text[:500]}
        if response.status_code == 429:
            return RateLimited(f"Azure throttled the request: {message}", retry_after=retry_after_seconds(response), maybe_billed=False, **common)
        if response.status_code in (401, 403):
            return AuthenticationError(f"Azure refused the prediction key ({code}): check {KEY_VARIABLE}", maybe_billed=False, **common)
        if response.status_code == 404:
            return ProviderError(f"Azure: {message} — check --project-id and --iteration (the published name)", maybe_billed=False, **common)
        if code in BAD_IMAGE_CODES:
            return BadInputError(f"Azure refused the image: {code}: {message}", maybe_billed=False, **common)
        return ProviderError(f"Azure answered HTTP {response.status_code}: {code} {message}", maybe_billed=response.status_code >= 500, **common)


class Options(ProviderOptions):
    endpoint: str | None = Field(None, description="Azure Custom Vision prediction endpoint.")
    base_url: str | None = Field(None, description="Provider endpoint (Azure: the same as --endpoint).")
    project_id: str | None = Field(None, description="Azure Custom Vision project id.")
    iteration: str | None = Field(None, description="Azure Custom Vision published iteration name.")
    api_version: str = Field("3.1", description="Azure Custom Vision API version: 3.0 or 3.1.")
    store_images: bool | None = Field(None, description="Let Azure keep the images (default: /nostore).")

    def model_id(self) -> str:
        return f"{self.project_id or ''}/{self.iteration or ''}"


def build(options: Options, client: httpx.Client, key: str | None) -> AzureCustomVisionClassifier:
    return AzureCustomVisionClassifier(
        client, key=key or "", endpoint=options.endpoint or options.base_url or "", project_id=options.project_id or "",
        iteration=options.iteration or "", api_version=options.api_version, store_images=bool(options.store_images),
        concurrency=options.concurrency or DEFAULT_CONCURRENCY, rate_per_second=options.rate(DEFAULT_RATE_PER_SECOND),
    )


# Custom Vision S0: per prediction; the paper's Table 5 matches $2 / 1,000 exactly.
PROVIDER = Provider(
    "azure", "Azure Custom Vision, retiring 2028-09-25", Options, 2.00, build, key_variable=KEY_VARIABLE,
    key_source="Azure portal → your Custom Vision *prediction* resource → Keys",
    typical_flags="--endpoint https://RESOURCE.cognitiveservices.azure.com --project-id ID --iteration NAME",
)
