"""Cost of the response cache per query: reserve + store (a paid query) and lookup (a hit), in
microseconds, for a full ImageNet answer (1,000 labels) and a Clarifai-sized one (20 labels).

    python bench/cache.py [--queries 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from barapi.method.labels import imagenet_classes
from barapi.money import Budget
from barapi.run.queries import LedgerMeter
from barapi.store import Store


class FakeClassifier:
    name, model_id, max_batch, cache_scope = "bench", "bench-model", 1, "bench"

    def labels(self) -> None:
        return None


def measure(labels: int, queries: int, per_request: int) -> tuple[float, float]:
    names = imagenet_classes()[:labels]
    rng = np.random.default_rng(0)
    answers = [dict(zip(names, rng.dirichlet(np.ones(labels)).tolist())) for _ in range(queries)]
    images = [f"image-{i}".encode() for i in range(queries)]
    with tempfile.TemporaryDirectory() as directory:
        store = Store(Path(directory))
        meter = LedgerMeter(store, Budget(max_usd=None, max_queries=None, per_1k=1.2), "bench", FakeClassifier())
        start = time.perf_counter()
        for i in range(0, queries, per_request):
            ticket = meter.before_send(images[i : i + per_request])
            meter.on_success(ticket, answers[i : i + per_request])
        store_us = (time.perf_counter() - start) / queries * 1e6
        keys = [meter.key(image) for image in images]
        start = time.perf_counter()
        for i in range(0, queries, 128):
            found = store.cached(keys[i : i + 128])
            store.record_hits("bench", "bench", "bench-model", list(found))
        lookup_us = (time.perf_counter() - start) / queries * 1e6
        assert len(store.cached(keys)) == queries
    return store_us, lookup_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    print("| answer | images per request | paid: reserve + store (µs/query) | hit: lookup + ledger (µs/query) |")
    print("|---|---|---|---|")
    for labels, per_request in ((1000, 1), (20, 1), (20, 128)):
        store_us, lookup_us = measure(labels, args.queries, per_request)
        print(f"| {labels} labels | {per_request} | {store_us:.0f} | {lookup_us:.0f} |")


if __name__ == "__main__":
    main()
