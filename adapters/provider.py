"""What a provider declares: its typed options, list price, key and how its classifier is built.
The adapter modules and any package that registers a provider import this module; the registry
(``barapi.adapters.providers``) imports them, never the other way round."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from barapi.classifier import Classifier
from barapi.errors import ConfigError


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
