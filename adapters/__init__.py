"""Provider adapters behind the ``Classifier`` protocol, built from a ProviderConfig."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import httpx

from barapi.classifier import Classifier
from barapi.config import ProviderConfig
from barapi.errors import AuthenticationError, ConfigError


def _torchserve(config: ProviderConfig, client: httpx.Client) -> Classifier:
    from barapi.adapters.torchserve import DEFAULT_BASE_URL, DEFAULT_MODEL, TorchServeClassifier

    o = config.options
    return TorchServeClassifier(
        client,
        base_url=str(o.get("base_url") or DEFAULT_BASE_URL),
        model=str(o.get("model") or DEFAULT_MODEL),
        version=o.get("model_version") or None,  # type: ignore[arg-type]
        management_url=o.get("management_url") or None,  # type: ignore[arg-type]
        concurrency=int(o.get("concurrency") or 8),
        rate_per_second=_rate(o, 0.0),
    )


def _key(variable: str, options: dict) -> str:
    """The API key: from the file the user named (--key-file, readable by its owner only), else
    from the environment. Never from the command line, the run's config or the database."""
    if options.get("key_file"):
        return read_key_file(Path(str(options["key_file"])).expanduser())
    value = os.environ.get(variable, "").strip()
    if not value:
        raise AuthenticationError(f"no API key: set the environment variable {variable} (e.g. export {variable}=...) or pass --key-file", maybe_billed=False)
    return value


def read_key_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"key file {path} is open to other users (mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`")
        value = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read key file {path}: {error.__class__.__name__}") from None
    if not value:
        raise AuthenticationError(f"key file {path} is empty: put the API key in it", maybe_billed=False)
    return value


def client_for(config: ProviderConfig) -> httpx.Client:
    """The HTTP client: timeouts always on; --timeout S sets how long to wait for an answer."""
    from barapi.adapters.http import CONNECT_TIMEOUT_S, make_client

    timeout = config.options.get("timeout")
    return make_client(timeout=httpx.Timeout(float(timeout), connect=CONNECT_TIMEOUT_S)) if timeout else make_client()


def _clarifai(config: ProviderConfig, client: httpx.Client) -> Classifier:
    from barapi.adapters import clarifai

    o = config.options
    return clarifai.ClarifaiClassifier(
        client,
        pat=_key(clarifai.KEY_VARIABLE, o),
        model=str(o.get("model") or clarifai.DEFAULT_MODEL),
        version=o.get("model_version") or None,  # type: ignore[arg-type]
        user_id=str(o.get("user_id") or "clarifai"),
        app_id=str(o.get("app_id") or "main"),
        base_url=str(o.get("base_url") or os.environ.get("CLARIFAI_API_BASE") or clarifai.DEFAULT_BASE_URL),
        max_concepts=int(o.get("max_concepts") or clarifai.MAX_CONCEPTS),
        concurrency=int(o.get("concurrency") or clarifai.DEFAULT_CONCURRENCY),
        rate_per_second=_rate(o, clarifai.DEFAULT_RATE_PER_SECOND),
    )


def _azure(config: ProviderConfig, client: httpx.Client) -> Classifier:
    from barapi.adapters import azure

    o = config.options
    return azure.AzureCustomVisionClassifier(
        client,
        key=_key(azure.KEY_VARIABLE, o),
        endpoint=str(o.get("endpoint") or o.get("base_url") or ""),
        project_id=str(o.get("project_id") or ""),
        iteration=str(o.get("iteration") or ""),
        api_version=str(o.get("api_version") or "3.1"),
        store_images=bool(o.get("store_images")),
        concurrency=int(o.get("concurrency") or azure.DEFAULT_CONCURRENCY),
        rate_per_second=_rate(o, azure.DEFAULT_RATE_PER_SECOND),
    )


def _rate(options: dict, default: float) -> float | None:
    """--rate-limit N caps requests/s; 0 turns the limiter off."""
    value = options.get("rate_limit")
    if value is None:
        return default
    return float(value) or None


def _local(config: ProviderConfig, client: httpx.Client) -> Classifier:
    from barapi.mock.heads import COARSE_MODELS, coarse_model
    from barapi.mock.model import DEFAULT_MODEL, ImageNetModel, InProcessClassifier

    name = str(config.options.get("model") or DEFAULT_MODEL)
    if name in COARSE_MODELS:
        return InProcessClassifier(ImageNetModel(), served=coarse_model(name))
    return InProcessClassifier(ImageNetModel(name))


BUILDERS: dict[str, Callable[[ProviderConfig, httpx.Client], Classifier]] = {
    "torchserve": _torchserve,
    "clarifai": _clarifai,
    "azure": _azure,
    "local": _local,
}


def default_model(provider: str, options: dict) -> str:
    """The model name the price table sees before a classifier exists."""
    if options.get("model"):
        return str(options["model"])
    if provider == "clarifai":
        from barapi.adapters.clarifai import DEFAULT_MODEL as clarifai_model

        return clarifai_model
    if provider == "azure":
        return f"{options.get('project_id', '')}/{options.get('iteration', '')}"
    from barapi.adapters.torchserve import DEFAULT_MODEL as torchserve_model

    return torchserve_model


def build_classifier(config: ProviderConfig, client: httpx.Client) -> Classifier:
    if config.name not in BUILDERS:
        raise ConfigError(f"unknown provider {config.name!r}: choose one of {', '.join(BUILDERS)}")
    return BUILDERS[config.name](config, client)
