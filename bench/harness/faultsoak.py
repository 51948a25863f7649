"""Training against a server that fails 30 % of requests in every way it can (5xx, 429 with
Retry-After, timeouts, resets, truncated bodies), checked against the same run without faults.

Shared by tests/test_faults.py (a few short runs) and bench/faults.py (the full soak).
"""

from __future__ import annotations

import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

import barapi
from barapi.mock.server import Faults, MockServer
from barapi.store import Store

# 30 % of requests fail, spread over every kind of failure the server can inject.
FAULT_MIX = {"fail_rate": 0.08, "throttle_rate": 0.08, "timeout_rate": 0.04, "reset_rate": 0.05, "truncate_rate": 0.05}
READ_TIMEOUT_S = 1.0  # the client gives up on a held request after this long…
HANG_S = 1.5  # …and the server holds a "timeout" request this long


@dataclass
class SoakResult:
    runs: int = 0
    completed: int = 0
    injected: Counter = field(default_factory=Counter)
    failed_attempts: int = 0  # attempts that got no usable answer (the adapter retried them)
    paid_queries: int = 0
    paid_without_faults: int = 0
    overruns: int = 0  # runs that spent past their budget
    lost_responses: int = 0  # answers paid for but missing from the cache
    program_mismatches: int = 0  # final program differs from the run without faults


def run_settings(seed: int, iterations: int, budget_usd: float) -> dict:
    """A run as a user asks for it: barapi.train's settings (the CLI's flags)."""
    return {"name": f"soak{seed}", "seed": seed, "iterations": iterations, "batch_size": 5, "q": 2, "embed_size": 112,
            "program_resolution": 16, "train_per_class": 3, "test_size": 20, "budget": budget_usd, "price_per_1k": 1.0,
            "provider": "torchserve", "timeout": READ_TIMEOUT_S, "concurrency": 8}


def lost_responses(store: Store, run: str) -> int:
    with store.session() as session:
        return int(session.execute(text(
            "SELECT COUNT(*) FROM ledger WHERE run = :run AND kind = 'paid' AND image_key NOT IN (SELECT key FROM responses)"
        ), {"run": run}).scalar())


def train(url: str, settings: dict, home: Path) -> tuple[dict, Store]:
    store = Store(home)
    return barapi.train(store=store, base_url=url, **settings).result.as_json(), store


def fault_soak(model, runs: int, iterations: int, budget_usd: float = 5.0, seed: int = 0) -> SoakResult:
    """``model``: a loaded ImageNetModel, shared by the faulty server and the clean one."""
    faults = Faults(seed=seed, hang_s=HANG_S, **FAULT_MIX)
    faulty, clean = MockServer("127.0.0.1", 0, model, faults=faults), MockServer("127.0.0.1", 0, model)
    for server in (faulty, clean):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    result = SoakResult()
    work = Path(tempfile.mkdtemp(prefix="barapi-faults-"))
    try:
        for run in range(runs):
            settings = run_settings(seed + run, iterations, budget_usd)
            reference, _ = train(f"http://127.0.0.1:{clean.server_address[1]}", settings, work / f"clean{run}")
            outcome, store = train(f"http://127.0.0.1:{faulty.server_address[1]}", settings, work / f"faulty{run}")
            counts = store.ledger_counts(settings["name"])
            result.runs += 1
            result.completed += outcome["status"] == "completed"
            result.failed_attempts += counts.get("failed", 0) + counts.get("released", 0)
            result.paid_queries += outcome["queries_paid"]
            result.paid_without_faults += reference["queries_paid"]
            result.overruns += outcome["cost_usd"] > budget_usd + 1e-9
            result.lost_responses += lost_responses(store, settings["name"])
            result.program_mismatches += outcome["program_sha256"] != reference["program_sha256"]
    finally:
        for server in (faulty, clean):
            server.shutdown()
            server.server_close()
    result.injected = Counter(faults.injected)
    return result
