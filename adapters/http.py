"""HTTP behaviour every adapter shares, in one place: timeouts, the retry policy, Retry-After,
a client-side rate limiter, key safety, and metering around every attempt.

Retry policy (named constants, pure ``should_retry``): retry throttling (429) and server or
transport failures (5xx, timeouts, resets) with exponential backoff that honours Retry-After;
never retry a bad key or a bad request.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from barapi.classifier import NULL_METER, Meter, Scores
from barapi.errors import (
    TRANSIENT_STATUSES,
    BudgetExceeded,
    ConfigError,
    ProviderError,
    ProviderResponseError,
    ProviderUnavailable,
)

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
MAX_ATTEMPTS = 6
BACKOFF_INITIAL_S = 0.25
BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 120.0
RETRYABLE_STATUSES = TRANSIENT_STATUSES
# Refuse bodies past this size: a misbehaving endpoint must not exhaust memory.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024

T = TypeVar("T")


def default_timeout() -> httpx.Timeout:
    return httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)


def make_client(**kwargs: object) -> httpx.Client:
    """An httpx client with timeouts on and TLS verification on; tests inject a transport."""
    kwargs.setdefault("timeout", default_timeout())
    kwargs.setdefault("limits", httpx.Limits(max_connections=64, max_keepalive_connections=32))
    return httpx.Client(verify=True, **kwargs)  # type: ignore[arg-type]


def should_retry(response: httpx.Response) -> bool:
    return response.status_code in RETRYABLE_STATUSES


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_MAX_S)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def is_retryable(error: BaseException) -> bool:
    """Throttling, server errors and transport failures (no status: timeouts, resets) are
    worth another attempt; an unreadable answer or a refused image is not (it would be paid
    for again, with the same outcome)."""
    return isinstance(error, ProviderError) and error.transient


def backoff_seconds(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, ProviderError) and error.retry_after is not None:
        return error.retry_after
    return min(BACKOFF_INITIAL_S * 2 ** (state.attempt_number - 1), BACKOFF_MAX_S)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def checked_url(url: str, flag: str = "--base-url") -> str:
    """An endpoint URL as a flag gave it, refused unless it is http(s)."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{flag} {url!r} must start with http:// or https://")
    return url


def check_key_transport(url: str, *, variable: str) -> None:
    """An API key never travels over plain http to anything but this machine."""
    parsed = httpx.URL(url)
    if parsed.scheme != "https" and not is_loopback(parsed.host):
        raise ConfigError(f"refusing to send {variable} over plain {parsed.scheme}:// to {parsed.host}: use an https:// URL")


class RateLimiter:
    """A token bucket shared by all threads of one adapter; ``None`` rate means unlimited."""

    def __init__(self, per_second: float | None) -> None:
        self.per_second = per_second
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self.per_second:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + 1.0 / self.per_second
        if slot > now:
            time.sleep(slot - now)


class HttpSender:
    """Sends one logical request with retries; meters every attempt."""

    def __init__(self, client: httpx.Client, *, rate_per_second: float | None = None, max_attempts: int = MAX_ATTEMPTS, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.limiter = RateLimiter(rate_per_second)
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.attempts = 0  # every HTTP attempt, retries included (benchmarks read it)
        self._count_lock = threading.Lock()

    def metadata(self, url: str, headers: dict[str, str] | None = None) -> object | None:
        """A free GET of what a provider publishes about its model (no meter, no retries): the
        JSON body, or None when it does not answer one. Callers then learn the same from the
        first paid answer, so a failure here costs one image at most, never the run."""
        try:
            response = self.client.get(url, headers=headers or {})
            return json.loads(response.content) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, UnicodeDecodeError):
            return None

    def send(
        self,
        build: Callable[[], httpx.Request],
        images: Sequence[bytes],
        meter: Meter,
        read: Callable[[httpx.Response], list[Scores]],
        fail: Callable[[httpx.Response], ProviderError],
        unreachable_hint: str,
    ) -> list[Scores]:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            retry=retry_if_exception(is_retryable),
            wait=backoff_seconds,
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(self._attempt, build, images, meter, read, fail, unreachable_hint)

    def _attempt(self, build, images, meter, read, fail, unreachable_hint) -> list[Scores]:  # noqa: ANN001
        with self._count_lock:
            self.attempts += 1
        self.limiter.wait()
        ticket = meter.before_send(images)  # BudgetExceeded propagates: nothing was sent
        try:
            response = self._exchange(build())
        except httpx.ConnectError as error:
            meter.on_failure(ticket, maybe_billed=False)
            raise ProviderUnavailable(f"cannot connect: {error}. {unreachable_hint}", maybe_billed=False) from error
        except httpx.TimeoutException as error:
            meter.on_failure(ticket, maybe_billed=True)
            raise ProviderError(f"request timed out ({type(error).__name__}); it may have been billed") from error
        except (httpx.TransportError, ProviderResponseError) as error:
            meter.on_failure(ticket, maybe_billed=True)
            if isinstance(error, ProviderError):
                raise
            raise ProviderError(f"connection failed mid-request: {error}") from error
        if response.is_success:
            try:
                results = read(response)
                if len(results) != len(images):
                    raise ProviderResponseError(f"sent {len(images)} image(s) but the provider answered {len(results)}")
            except (ProviderError, ValueError, KeyError, TypeError, AttributeError) as error:
                meter.on_failure(ticket, maybe_billed=True)  # answered, so billed, but unusable
                if isinstance(error, ProviderError):
                    raise
                raise ProviderResponseError(f"unreadable response: {error!r}", status=response.status_code, body=response.text[:500]) from error
            meter.on_success(ticket, results)
            return results
        error = fail(response)
        meter.on_failure(ticket, maybe_billed=error.maybe_billed)
        raise error

    def _exchange(self, request: httpx.Request) -> httpx.Response:
        """Send, reading at most MAX_RESPONSE_BYTES of the answer."""
        streamed = self.client.send(request, stream=True)
        try:
            chunks = []
            size = 0
            for chunk in streamed.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise ProviderResponseError(f"response larger than {MAX_RESPONSE_BYTES} bytes: refused")
                chunks.append(chunk)
        finally:
            streamed.close()
        # iter_bytes() already decoded any content encoding, so drop the header that named it.
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(streamed.status_code, headers=headers, content=b"".join(chunks), request=request)


def run_concurrently(tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Run tasks on up to ``workers`` threads, results in order; the first error cancels the
    tasks not yet started and is raised (a budget stop wins over other errors)."""
    from concurrent.futures import ThreadPoolExecutor

    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
        errors: list[BaseException] = []
        results: list[T] = []
        for future in futures:
            if errors:
                future.cancel()
                continue
            try:
                results.append(future.result())
            except BaseException as error:  # noqa: BLE001 - re-raised below
                errors.append(error)
                for other in futures:
                    other.cancel()
        if errors:
            budget = [e for e in errors if isinstance(e, BudgetExceeded)]
            raise (budget or errors)[0]
        return results


class HttpClassifier:
    """The predict skeleton every HTTP adapter shares: the images go out in requests of at most
    ``max_batch``, each sent with retries and metering, up to ``concurrency`` at once, answers in
    order. An adapter says how to build one request, read one answer and name one error."""

    name: str
    max_batch: int

    def __init__(self, client: httpx.Client, *, concurrency: int, rate_per_second: float | None) -> None:
        self.concurrency = concurrency
        self.sender = HttpSender(client, rate_per_second=rate_per_second)

    def predict(self, images: Sequence[bytes], *, meter: Meter = NULL_METER) -> list[Scores]:
        self.check(images)
        chunks = [images[i : i + self.max_batch] for i in range(0, len(images), self.max_batch)]

        def one(chunk: Sequence[bytes]) -> list[Scores]:
            return self.sender.send(lambda: self.request(chunk), chunk, meter, self.read, self.error, self.unreachable_hint)

        return [scores for answers in run_concurrently([lambda c=c: one(c) for c in chunks], self.concurrency) for scores in answers]

    def check(self, images: Sequence[bytes]) -> None:
        """Refuse, before anything is sent, images the provider is known to refuse."""

    def request(self, images: Sequence[bytes]) -> httpx.Request:
        raise NotImplementedError

    def read(self, response: httpx.Response) -> list[Scores]:
        raise NotImplementedError

    def error(self, response: httpx.Response) -> ProviderError:
        raise NotImplementedError

    @property
    def unreachable_hint(self) -> str:
        raise NotImplementedError
