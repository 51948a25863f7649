"""TorchServe inference API (and `barapi mock serve`, which speaks it).

One image per request (TorchServe's predictions API takes one), so a batch is scored by
parallel requests over keep-alive connections.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx

from pydantic import Field

from barapi.adapters.provider import Provider, ProviderOptions
from barapi.adapters.http import HttpClassifier, checked_url, retry_after_seconds
from barapi.adapters.parsing import error_message, label_scores, parse_json
from barapi.classifier import Scores
from barapi.errors import ProviderError, RateLimited

# Self-hosted: $0 unless --price-per-1k accounts for your own hardware.
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_MODEL = "efficientnet-lite0"
DEFAULT_CONCURRENCY = 8
START_HINT = "Start the local server with `barapi mock serve` (or `docker compose up mock`), or pass --base-url."


class TorchServeClassifier(HttpClassifier):
    name = "torchserve"
    max_batch = 1  # TorchServe's predictions API takes one image per request
    unreachable_hint = START_HINT

    def __init__(
        self,
        client: httpx.Client,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        version: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_per_second: float | None = None,
        management_url: str | None = None,
    ) -> None:
        checked_url(base_url)
        super().__init__(client, concurrency=concurrency, rate_per_second=rate_per_second)
        self.base_url = base_url.rstrip("/")
        self.management_url = (management_url or base_url).rstrip("/")
        self.model_id = model
        self.version = version
        self._labels: list[str] | None = None

    @property
    def cache_scope(self) -> str:
        # Self-hosted: the endpoint identifies the deployment as much as the model name does.
        return f"{self.base_url}|{self.model_id}|{self.version or ''}"

    def labels(self) -> list[str] | None:
        """The labels a model's handler publishes in its custom metadata (the management API's
        ``GET /models/{name}?customized=true``, answering ``customizedMetadata`` as a JSON
        string holding ``labels``); the local server's handlers do. None otherwise."""
        if self._labels is None:
            version = f"/{self.version}" if self.version else ""
            described = self.sender.metadata(f"{self.management_url}/models/{self.model_id}{version}?customized=true")
            self._labels = published_labels(described)
        return self._labels or None

    def request(self, images: Sequence[bytes]) -> httpx.Request:
        url = f"{self.base_url}/predictions/{self.model_id}" + (f"/{self.version}" if self.version else "")
        return self.sender.client.build_request("POST", url, content=images[0], headers={"Content-Type": "application/octet-stream"})

    def read(self, response: httpx.Response) -> list[Scores]:
        payload = parse_json(response)
        if isinstance(payload, list) and len(payload) == 1:
            payload = payload[0]
        return [label_scores(payload)]

    def error(self, response: httpx.Response) -> ProviderError:
        message = error_message(response)
        status = response.status_code
        if status == 404:
            return ProviderError(f"{message} — is --model {self.model_id!r} served at {self.base_url}? (GET /models lists them)", status=status, body=response.text[:500], maybe_billed=False)
        if status == 429:
            return RateLimited(f"throttled: {message}", status=status, retry_after=retry_after_seconds(response), maybe_billed=False)
        return ProviderError(f"server answered {status}: {message}", status=status, body=response.text[:500], maybe_billed=status >= 500)


def published_labels(described: object) -> list[str]:
    try:
        metadata = json.loads(described[0]["customizedMetadata"])  # type: ignore[index]
        labels = metadata["labels"]
    except (TypeError, KeyError, IndexError, ValueError):
        return []
    return [str(label) for label in labels] if isinstance(labels, list) else []


class Options(ProviderOptions):
    base_url: str = Field(DEFAULT_BASE_URL, description="Provider endpoint.")
    model: str = Field(DEFAULT_MODEL, description="Model name at the provider.")
    model_version: str | None = Field(None, description="Model version, if the provider has versions.")
    management_url: str | None = Field(None, description="TorchServe management API, where a model's labels are published (default: --base-url; TorchServe's own is port 8081).")

    def model_id(self) -> str:
        return self.model


def build(options: Options, client: httpx.Client, key: str | None) -> TorchServeClassifier:
    return TorchServeClassifier(
        client, base_url=options.base_url, model=options.model, version=options.model_version, management_url=options.management_url,
        concurrency=options.concurrency or DEFAULT_CONCURRENCY, rate_per_second=options.rate(None),
    )


PROVIDER = Provider(
    "torchserve", "TorchServe, and `barapi mock serve`", Options, 0.0, build,
    key_source="your own server, or `barapi mock serve`", typical_flags="--base-url http://127.0.0.1:8080 --model efficientnet-lite0",
)
