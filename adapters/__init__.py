"""Provider adapters behind the ``Classifier`` protocol, registered once.

Each adapter module declares its ``Provider``: a typed options model (pydantic: every option,
its default and what it means), the list price, the environment variable its key comes from, and
how to build the classifier (``barapi.adapters.provider``). The registry below is the only list of
providers: the CLI's provider flags, ``estimate``'s price and ``build_classifier`` all read it. A
new provider is one module and one line in ``providers``, or an entry point in another package.
"""

from __future__ import annotations

import os
import stat
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

import httpx

from barapi.adapters.provider import Provider, ProviderOptions
from barapi.classifier import Classifier
from barapi.config import ProviderConfig
from barapi.errors import AuthenticationError, ConfigError

__all__ = ["ENTRY_POINTS", "Provider", "ProviderOptions", "build_classifier", "client_for", "model_id", "provider", "providers"]


# Providers another package registers: an entry point ``NAME = "module:PROVIDER"`` in this group
# (barapi's own mock extra registers `local` this way, so the registry never names the local server).
ENTRY_POINTS = "barapi.providers"


@cache
def providers() -> dict[str, Provider]:
    """The registry, built on first use: the adapters here, then those registered by entry point."""
    from barapi.adapters import azure, clarifai, huggingface, oip, torchserve

    found = [torchserve.PROVIDER, clarifai.PROVIDER, azure.PROVIDER, huggingface.PROVIDER, oip.PROVIDER]
    found += [entry.load() for entry in entry_points(group=ENTRY_POINTS)]
    return {p.name: p for p in found}


def provider(name: str) -> Provider:
    if name not in providers():
        raise ConfigError(f"unknown provider {name!r}: choose one of {', '.join(providers())}")
    return providers()[name]


def model_id(config: ProviderConfig) -> str:
    """The model name the price table sees before a classifier exists; an unknown provider's
    model is taken from its options as given."""
    if config.name not in providers():
        return str(config.options.get("model") or "")
    return providers()[config.name].parse(config.options).model_id()


def build_classifier(config: ProviderConfig, client: httpx.Client) -> Classifier:
    chosen = provider(config.name)
    options = chosen.parse(config.options)
    key = _key(chosen.key_variable, options) if chosen.key_variable else None
    return chosen.build(options, client, key)


def client_for(config: ProviderConfig) -> httpx.Client:
    """The HTTP client: timeouts always on; --timeout S sets how long to wait for an answer."""
    from barapi.adapters.http import CONNECT_TIMEOUT_S, make_client

    timeout = config.options.get("timeout")
    return make_client(timeout=httpx.Timeout(float(timeout), connect=CONNECT_TIMEOUT_S)) if timeout else make_client()


def _key(variable: str, options: ProviderOptions) -> str:
    """The API key: from the file the user named (--key-file, readable by its owner only), else
    from the environment. Never from the command line, the run's config or the database."""
    if options.key_file:
        return read_key_file(Path(options.key_file).expanduser())
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
