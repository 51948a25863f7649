"""Faults, bounded for CI (bench/faults.py runs the full soak): 30 % of requests fail as 5xx,
429 + Retry-After, timeouts, resets and truncated bodies, and training still completes with the
same program as without faults, within budget, with every paid answer in the cache."""

import threading

import httpx
import pytest

from barapi.mock.server import Faults, MockServer
from faultsoak import FAULT_MIX, fault_soak

pytestmark = pytest.mark.slow


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
