"""Faults, bounded for CI (bench/faults.py runs the full soak): 30 % of requests fail as 5xx,
429 + Retry-After, timeouts, resets and truncated bodies, and training still completes with the
same program as without faults, within budget, with every paid answer in the cache."""

import threading

import httpx
import pytest

from barapi.mock.server import Faults, MockServer
from harness.faultsoak import FAULT_MIX, fault_soak

# Races of real processes and threads: one at a time on one worker when the suite runs in parallel
# (pytest-xdist's loadgroup), so two never fight for the same two cores.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("races")]


def test_training_survives_a_30_percent_fault_rate_losing_nothing(imagenet_model) -> None:
    result = fault_soak(imagenet_model, runs=2, iterations=3)
    assert result.completed == result.runs == 2
    assert set(result.injected) == {"fail", "throttle", "timeout", "reset", "truncate"}  # every kind happened
    assert result.failed_attempts >= sum(result.injected.values()) * 0.9  # each fault cost one attempt
    assert result.overruns == 0 and result.lost_responses == 0 and result.program_mismatches == 0
    assert result.paid_queries >= result.paid_without_faults


@pytest.mark.parametrize("kind", ["reset", "truncate", "timeout"])
def test_each_transport_fault_is_what_a_client_sees(imagenet_model, kind: str) -> None:
    faults = Faults(seed=0, hang_s=0.5, **{f"{kind}_rate": 1.0})
    server = MockServer("127.0.0.1", 0, imagenet_model, faults=faults)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout)):
            httpx.post(f"http://127.0.0.1:{server.server_address[1]}/predictions/{imagenet_model.name}", content=b"x", timeout=0.25)
    finally:
        server.shutdown()
        server.server_close()
    assert faults.injected[kind] == 1


def test_fault_rates_above_one_are_refused() -> None:
    from barapi.errors import ConfigError

    with pytest.raises(ConfigError, match="more than 1"):
        Faults(**{k: 0.3 for k in FAULT_MIX})


@pytest.mark.parametrize("provider", ["huggingface", "oip"])
def test_the_newer_protocols_fail_in_their_own_words_and_their_adapters_retry_through(imagenet_model, provider: str) -> None:
    from barapi.adapters.huggingface import HuggingFaceClassifier
    from barapi.adapters.oip import OipClassifier
    from barapi.method.program import Program, initial_parameters
    from barapi.config import Geometry

    import numpy as np

    g = Geometry(program_resolution=8)
    images = Program(g).encode_batch(initial_parameters(g, 1.0, np.random.default_rng(0)), np.zeros((6, 64, 64, 3)) + np.linspace(-1, 1, 6)[:, None, None, None])
    answers = []
    for faults in (Faults(), Faults(seed=3, fail_rate=0.3, throttle_rate=0.3)):
        server = MockServer("127.0.0.1", 0, imagenet_model, faults=faults)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            with httpx.Client(timeout=30) as client:
                classifier = (HuggingFaceClassifier(client, key="mock-key", model="coarse-5", base_url=url, concurrency=2) if provider == "huggingface"
                              else OipClassifier(client, base_url=url, model="coarse-5", images_per_request=1, concurrency=2))
                classifier.sender.sleep = lambda s: None
                answers.append(classifier.predict(images))
        finally:
            server.shutdown()
            server.server_close()
    assert answers[1] == answers[0]  # every image answered, as without faults
    assert faults.injected["fail"] >= 1 and faults.injected["throttle"] >= 1


@pytest.mark.parametrize("path", ["/hf-inference/models/coarse-5", "/v2/models/coarse-5/infer"])
@pytest.mark.parametrize("kind,status", [("fail", 500), ("throttle", 429)])
def test_an_injected_fault_on_the_newer_routes_reads_as_those_services_errors(imagenet_model, path: str, kind: str, status: int) -> None:
    server = MockServer("127.0.0.1", 0, imagenet_model, faults=Faults(**{f"{kind}_rate": 1.0}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = httpx.post(f"http://127.0.0.1:{server.server_address[1]}{path}", content=b"x", headers={"Authorization": "Bearer mock-key"})
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == status and set(answer.json()) == {"error"}  # {"error": ...}, as both services write it
    assert (answer.headers.get("Retry-After") is not None) == (kind == "throttle")
