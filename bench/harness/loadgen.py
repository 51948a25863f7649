"""Many clients at once against the local server for a bounded time: what fails, how fast.
Shared by tests/test_load.py (seconds) and bench/load.py (the full figures)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import numpy as np

from barapi.method.program import Program, initial_parameters
from barapi.config import Geometry


@dataclass
class LoadResult:
    clients: int
    seconds: float
    requests: int
    failures: int
    p50_ms: float
    p99_ms: float
    answered: list[int]  # answers each client got

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def sample_images(count: int, seed: int = 0) -> list[bytes]:
    """Programmed canvases like the ones training sends (224 px PNG, random targets)."""
    geometry = Geometry(embed_size=112, program_resolution=16)
    rng = np.random.default_rng(seed)
    return Program(geometry).encode_batch(initial_parameters(geometry, 0.5, rng), rng.uniform(-1, 1, (count, 112, 112, 3)))


def load(url: str, model: str, clients: int, seconds: float) -> LoadResult:
    images = sample_images(32)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    answered = [0] * clients

    def client(index: int) -> None:
        nonlocal failures
        with httpx.Client(timeout=30) as session:
            i = index
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    ok = session.post(f"{url}/predictions/{model}", content=images[i % len(images)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    latencies.append(time.perf_counter() - started)
                    failures += not ok
                    answered[index] += ok
                i += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begun
    ms = np.asarray(latencies) * 1000
    return LoadResult(clients, elapsed, len(latencies), failures, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), answered)
