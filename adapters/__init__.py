"""Provider adapters behind the ``Classifier`` protocol, registered once.

Each adapter module declares its ``Provider``: a typed options model (pydantic: every option,
its default and what it means), the list price, the environment variable its key comes from, and
how to build the classifier. The registry below is the only list of providers: the CLI's
provider flags, ``estimate``'s price and ``build_classifier`` all read it. A new provider is one
module and one line in ``providers``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from barapi.classifier import Classifier
from barapi.config import ProviderConfig
from barapi.errors import AuthenticationError, ConfigError


class ProviderOptions(BaseModel):
    """What every provider takes; each adapter adds its own. Field names are the CLI's flags."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(None, ge=1, description="Parallel requests (default per provider).")
    rate_limit: float | None = Field(None, ge=0, description="Most requests/s (default per provider: Clarifai 15, Azure 10); 0 = off.")
    timeout: float | None = Field(None, ge=0.1, description="Seconds to wait for an answer (default 60).")
    key_file: str | None = Field(None, description="Read the API key from this file (mode 600), not the environment.")

    def model_id(self) -> str:
        """The model name the price table sees before a classifier exists."""
        raise NotImplementedError

    def rate(self, default: float | None) -> float | None:
        """--rate-limit N caps requests/s; 0 turns the limiter off."""
        if self.rate_limit is None:
            return default
        return self.rate_limit or None


@dataclass(frozen=True)
class Provider:
    name: str
    summary: str
    options: type[ProviderOptions]
    price_per_1k: float | None  # list price (None: none per image); a user's price file or --price-per-1k overrides it
    build: Callable[[Any, httpx.Client, str | None], Classifier]  # (options, client, key)
    key_variable: str | None = None  # None: the provider takes no key
    key_source: str = ""  # where a user gets the key (or the server), for README's table
    typical_flags: str = ""  # the flags a first run usually needs

    def parse(self, raw: dict[str, Any]) -> ProviderOptions:
        try:
            return self.options.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            flag = "--" + "-".join(str(p) for p in first["loc"]).replace("_", "-")
            if first["type"] == "extra_forbidden":
                takes = ", ".join("--" + name.replace("_", "-") for name in self.options.model_fields)
                raise ConfigError(f"{flag} is not an option of provider {self.name} (it takes {takes})") from None
            raise ConfigError(f"invalid {flag}: {first['msg']}") from None


@cache
def providers() -> dict[str, Provider]:
    """The registry (built on first use: the adapter modules import this one)."""
    from barapi.adapters import azure, clarifai, huggingface, oip, torchserve
    from barapi.mock.model import PROVIDER as local

    return {p.name: p for p in (torchserve.PROVIDER, clarifai.PROVIDER, azure.PROVIDER, huggingface.PROVIDER, oip.PROVIDER, local)}


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
