"""Load, bounded for CI (bench/load.py holds it longer): 16 clients at once, nothing fails."""

import pytest

from harness.loadgen import load

pytestmark = pytest.mark.slow


def test_sixteen_clients_at_once_get_every_answer(server_url: str, imagenet_model) -> None:
    result = load(server_url, imagenet_model.name, clients=16, seconds=4)
    assert result.failures == 0
    assert min(result.answered) >= 1 and sum(result.answered) == result.requests  # no client starved, every request answered
