"""Across random budgets, prices, batch sizes and injected failures: spent ≤ budget always, and
the ledger's sum is exactly the cost reported."""

import random
import tempfile
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barapi.adapters.torchserve import TorchServeClassifier
from barapi.errors import BudgetExceeded, ProviderError
from barapi.money import Budget
from barapi.run.queries import QueryEngine
from barapi.store import Store


def flaky_handler(rng: random.Random, failure_rate: float):
    def handler(request: httpx.Request) -> httpx.Response:
        roll = rng.random()
        if roll < failure_rate / 4:
            raise httpx.ReadTimeout("slow", request=request)
        if roll < failure_rate / 2:
            return httpx.Response(503, json={"message": "busy"})
        if roll < 3 * failure_rate / 4:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "slow down"})
        if roll < failure_rate:
            raise httpx.RemoteProtocolError("reset", request=request)
        return httpx.Response(200, json={"cat": 0.6, "dog": 0.4, "n": len(request.content)})

    return handler


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_usd=st.floats(0.0, 0.2),
    per_1k=st.floats(0.1, 5.0),
    batch_sizes=st.lists(st.integers(1, 12), min_size=1, max_size=12),
    failure_rate=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**16),
)
def test_spent_never_exceeds_budget_and_ledger_matches(max_usd, per_1k, batch_sizes, failure_rate, seed) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as directory:
        store = Store(Path(directory))
        budget = Budget(max_usd=max_usd, max_queries=None, per_1k=per_1k)
        classifier = TorchServeClassifier(httpx.Client(transport=httpx.MockTransport(flaky_handler(rng, failure_rate))), base_url="http://127.0.0.1:9", concurrency=3)
        classifier.sender.sleep = lambda s: None
        engine = QueryEngine(classifier, store, budget, "run")
        counter = 0
        for size in batch_sizes:
            images = [f"image-{counter + i}".encode() for i in range(size)]
            counter += size
            try:
                engine.score(images)
            except (BudgetExceeded, ProviderError):
                pass
            assert budget.spent_usd <= max_usd + 1e-9
        paid, ledger_usd = store.spent("run")
        assert ledger_usd == pytest.approx(budget.spent_usd, abs=1e-9)
        assert paid == budget.spent_queries
        counts = store.ledger_counts("run")
        assert counts.get("reserved", 0) == 0  # every attempt settled
        # Every paid response is in the cache.
        assert len(store.cached([engine.meter.key(f"image-{i}".encode()) for i in range(counter)])) == counts.get("paid", 0)
