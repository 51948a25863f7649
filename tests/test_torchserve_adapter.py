import json
import threading

import httpx
import pytest

from barapi.adapters.http import MAX_ATTEMPTS, RateLimiter, check_key_transport, should_retry
from barapi.adapters.torchserve import TorchServeClassifier
from barapi.errors import BudgetExceeded, ConfigError, ProviderError, ProviderResponseError, ProviderUnavailable


class RecordingMeter:
    def __init__(self, limit: int | None = None) -> None:
        self.sent = self.paid = self.failed_billed = self.released = 0
        self.limit = limit
        self.lock = threading.Lock()

    def before_send(self, images):
        with self.lock:
            if self.limit is not None and self.sent + len(images) > self.limit:
                raise BudgetExceeded("budget")
            self.sent += len(images)
        return len(images)

    def on_success(self, ticket, results):
        with self.lock:
            self.paid += ticket

    def on_failure(self, ticket, maybe_billed):
        with self.lock:
            if maybe_billed:
                self.failed_billed += ticket
            else:
                self.released += ticket


def classifier(handler, **kwargs) -> TorchServeClassifier:
    c = TorchServeClassifier(httpx.Client(transport=httpx.MockTransport(handler)), base_url="http://127.0.0.1:9", **kwargs)
    c.sender.sleep = lambda s: None
    return c


def answer(request: httpx.Request) -> httpx.Response:
    # The answer depends on the bytes sent, so order mix-ups would show.
    return httpx.Response(200, json={"cat": 0.5, f"img-{request.content.decode()}": 0.4})


def test_one_raw_image_per_request_results_in_input_order() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers["content-type"]))
        return answer(request)

    results = classifier(handler, model="lite").predict([b"a", b"b", b"c"])
    assert [list(r)[1] for r in results] == ["img-a", "img-b", "img-c"]
    assert seen == [("POST", "/predictions/lite", "application/octet-stream")] * 3


def test_version_goes_in_the_path() -> None:
    paths = []
    classifier(lambda r: paths.append(r.url.path) or answer(r), model="m", version="1.0").predict([b"x"])
    assert paths == ["/predictions/m/1.0"]


def test_throttling_is_retried_after_the_servers_retry_after() -> None:
    calls = []
    slept = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(429, headers={"Retry-After": "2"}, json={"code": 429, "message": "slow down"})
        return answer(request)

    c = classifier(handler)
    c.sender.sleep = slept.append
    meter = RecordingMeter()
    assert c.predict([b"x"], meter=meter)[0]["cat"] == 0.5
    assert slept == [2.0, 2.0]
    assert (meter.paid, meter.released, meter.failed_billed) == (1, 2, 0)  # 429s are not billed


def test_server_errors_are_retried_and_counted_as_possibly_billed() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, json={"code": 503, "message": "busy"}) if len(calls) == 1 else answer(request)

    meter = RecordingMeter()
    classifier(handler).predict([b"x"], meter=meter)
    assert (meter.paid, meter.failed_billed) == (1, 1)


def test_persistent_failure_gives_up_after_max_attempts() -> None:
    calls = []
    with pytest.raises(ProviderError, match="500"):
        classifier(lambda r: calls.append(1) or httpx.Response(500, json={"message": "boom"})).predict([b"x"])
    assert len(calls) == MAX_ATTEMPTS


def test_unknown_model_is_not_retried_and_names_the_flag() -> None:
    calls = []
    body = {"code": 404, "type": "ModelNotFoundException", "message": "Model not found: nope"}
    with pytest.raises(ProviderError, match="--model 'nope'"):
        classifier(lambda r: calls.append(1) or httpx.Response(404, json=body), model="nope").predict([b"x"])
    assert len(calls) == 1


def test_unreachable_server_says_how_to_start_one() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    meter = RecordingMeter()
    with pytest.raises(ProviderUnavailable, match="barapi mock serve"):
        classifier(refuse).predict([b"x"], meter=meter)
    assert meter.released == 1 and meter.failed_billed == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", json.dumps({"cat": "high"}).encode(), json.dumps({"cat": float("nan")}).encode(), b"{}"])
def test_malformed_answers_raise_the_projects_error(body: bytes) -> None:
    with pytest.raises(ProviderResponseError):
        classifier(lambda r: httpx.Response(200, content=body)).predict([b"x"])


def test_budget_stop_sends_nothing_more() -> None:
    sent = []
    meter = RecordingMeter(limit=2)
    with pytest.raises(BudgetExceeded):
        classifier(lambda r: sent.append(1) or answer(r), concurrency=1).predict([b"a", b"b", b"c"], meter=meter)
    assert len(sent) == 2


def test_should_retry_is_a_pure_function_of_the_status() -> None:
    assert should_retry(httpx.Response(429)) and should_retry(httpx.Response(503))
    assert not should_retry(httpx.Response(401)) and not should_retry(httpx.Response(400))


def test_keys_never_travel_over_plain_http_off_this_machine() -> None:
    check_key_transport("http://127.0.0.1:8080", variable="X")
    check_key_transport("http://localhost:8080", variable="X")
    check_key_transport("https://api.clarifai.com", variable="X")
    with pytest.raises(ConfigError, match="https"):
        check_key_transport("http://api.clarifai.com", variable="X")


def test_rate_limiter_spaces_requests() -> None:
    import time

    limiter = RateLimiter(50.0)
    start = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - start >= 0.19
