"""The one exception tree of barapi. Every error says what the user can do next.

BarapiError
├── ConfigError            bad option, dataset or price: fix the command line
│   └── DatasetError       the data cannot be loaded as asked
├── PriceError             no known price for a provider/model: pass --price-per-1k
├── BudgetExceeded         the next request would spend past the budget or query cap
├── StoreError             the state directory cannot be used (unknown run, bad database)
└── ProviderError          the prediction API failed; carries status, request id, body
    ├── ProviderUnavailable    cannot connect: start the server or check the URL
    ├── AuthenticationError    bad or missing key: names the variable to set
    ├── RateLimited            throttled (retried; raised once retries are used up)
    ├── BadInputError          the provider refused an image
    └── ProviderResponseError  the provider answered something we cannot read
"""

from __future__ import annotations

# Statuses that say "try again later" rather than "this request is wrong".
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class BarapiError(Exception):
    """Base class: anything barapi raises on purpose."""


class ConfigError(BarapiError):
    pass


class DatasetError(ConfigError):
    pass


class PriceError(BarapiError):
    pass


class BudgetExceeded(BarapiError):
    pass


class StoreError(BarapiError):
    pass


class ProviderError(BarapiError):
    """A failed call to a prediction API.

    ``maybe_billed`` is True when the request may have reached the provider (sent, then a
    timeout or a server error): the budget counts such an attempt as spent.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        body: str | None = None,
        maybe_billed: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id
        self.body = body
        self.maybe_billed = maybe_billed
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth another attempt: throttling, a server error, a timeout or a dropped connection."""
        return self.status is None or self.status in TRANSIENT_STATUSES


class ProviderUnavailable(ProviderError):
    transient = False  # nothing listens: retrying will not start the server


class AuthenticationError(ProviderError):
    transient = False


class RateLimited(ProviderError):
    transient = True


class BadInputError(ProviderError):
    transient = False


class ProviderResponseError(ProviderError):
    transient = False  # an unreadable answer was paid for; asking again would pay again
