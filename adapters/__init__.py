"""Provider adapters behind the ``Classifier`` protocol, built from a ProviderConfig."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from barapi.classifier import Classifier
from barapi.config import ProviderConfig
from barapi.errors import ConfigError


def _torchserve(config: ProviderConfig, client: httpx.Client) -> Classifier:
    from barapi.adapters.torchserve import DEFAULT_BASE_URL, DEFAULT_MODEL, TorchServeClassifier

    o = config.options
    return TorchServeClassifier(
        client,
        base_url=str(o.get("base_url") or DEFAULT_BASE_URL),
        model=str(o.get("model") or DEFAULT_MODEL),
        version=o.get("model_version") or None,  # type: ignore[arg-type]
        concurrency=int(o.get("concurrency") or 8),
        rate_per_second=o.get("rate_limit") or None,  # type: ignore[arg-type]
    )


def _local(config: ProviderConfig, client: httpx.Client) -> Classifier:
    from barapi.mock.model import DEFAULT_MODEL, ImageNetModel, InProcessClassifier

    return InProcessClassifier(ImageNetModel(str(config.options.get("model") or DEFAULT_MODEL)))


BUILDERS: dict[str, Callable[[ProviderConfig, httpx.Client], Classifier]] = {
    "torchserve": _torchserve,
    "local": _local,
}


def build_classifier(config: ProviderConfig, client: httpx.Client) -> Classifier:
    if config.name not in BUILDERS:
        raise ConfigError(f"unknown provider {config.name!r}: choose one of {', '.join(BUILDERS)}")
    return BUILDERS[config.name](config, client)
