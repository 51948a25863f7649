"""Real `barapi train` processes racing for one budget pool, killed and resumed elsewhere.
Shared by tests/test_pools.py (assertions) and bench/pools.py (the figures)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from barapi.store import PAID_KINDS, Store

# $1.20 at $1.20 / 1,000: the pool buys 1,000 images; eight runs of 30 steps would want ~2,500 (of 20, ~1,850).
POOL_USD, PRICE, STEPS = 1.20, "1.20", 30
RUN = ["--dataset", "digits", "--train-per-class", "3", "--test-size", "10", "--batch-size", "4",
       "--q", "1", "--estimator", "one-sided", "--concurrency", "2", "--price-per-1k", PRICE, "--pool", "team", "--yes", "--json"]


def store_of(shared: dict[str, str], tmp_path: Path) -> Store:
    return Store(Path(shared.get("BARAPI_HOME", tmp_path / "observer")), url=shared.get("BARAPI_STORE"))


def worker(shared: dict[str, str], home: Path, *args: str) -> subprocess.Popen:
    """A barapi process on the shared store (one SQLite home, or one server: each its own home)."""
    env = os.environ | {"BARAPI_HOME": str(home)} | shared
    return subprocess.Popen([sys.executable, "-m", "barapi.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def outcome(code: int, out: str, err: str) -> str:
    """"measured" (a test accuracy), "refused by the pool" (before its first query), or what went wrong."""
    if code == 0:
        return "measured" if json.loads(out.strip().splitlines()[-1])["test_accuracy"] is not None else "ended unmeasured"
    if "pool 'team'" in err and "nothing was sent" in err:
        return "refused by the pool"
    return "failed: " + err.strip().splitlines()[-1][:200]


def race(server_url: str, shared: dict[str, str], tmp_path: Path, workers: int = 8, pool_usd: float = POOL_USD,
         steps: int = STEPS) -> tuple[list[tuple[int, str, str]], dict]:
    store = store_of(shared, tmp_path)
    store.set_pool("team", pool_usd)
    names = [f"w{i}" for i in range(workers)]
    processes = [worker(shared, tmp_path / name, "train", "--base-url", server_url, *RUN, "--iterations", str(steps), "--seed", str(i), "--name", name)
                 for i, name in enumerate(names)]
    results = [finish(p) for p in processes]
    return results, figures(store, names, [outcome(*r) for r in results], pool_usd)


def kill_race(server_url: str, shared: dict[str, str], tmp_path: Path, workers: int = 4, rounds: int = 2, seed: int = 7,
              steps: int = STEPS) -> tuple[list[tuple[int, str, str]], dict]:
    """Each worker is killed (SIGKILL) at a random moment in each round and its run resumed by a
    new process with another home (another machine, as far as the run can tell)."""
    store = store_of(shared, tmp_path)
    store.set_pool("team", POOL_USD)
    rng = random.Random(seed)
    names = [f"k{i}" for i in range(workers)]
    start = {name: ["train", "--base-url", server_url, *RUN, "--iterations", str(steps), "--seed", str(i), "--name", name] for i, name in enumerate(names)}
    processes = {name: worker(shared, tmp_path / f"{name}-0", *start[name]) for name in names}
    kills = 0
    for round_ in range(1, rounds + 1):
        for name, process in list(processes.items()):
            try:
                process.wait(timeout=rng.uniform(1.0, 4.0))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                again = ["resume", name, "--json"] if store.has_run(name) else start[name]
                processes[name] = worker(shared, tmp_path / f"{name}-{round_}", *again)
    results = [finish(p) for p in processes.values()]
    for name in names:
        store.mark_lost(name)  # what a killed worker had in flight: counted, never dropped
    return results, figures(store, names, [outcome(*r) for r in results]) | {"kills": kills}


def figures(store: Store, names: list[str], outcomes: list[str], pool_usd: float = POOL_USD) -> dict:
    report = store.pool_report("team")
    with store.session() as session:
        kinds = dict(session.execute(text("SELECT kind, COUNT(*) FROM ledger WHERE pool = 'team' GROUP BY kind")).all())
        paid = session.execute(text(f"SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM ledger WHERE pool = 'team' AND kind IN {PAID_KINDS}")).one()
    return {
        "spent_usd": report["spent_usd"], "queries_paid": report["queries_paid"], "overrun_usd": round(max(report["spent_usd"] - pool_usd, 0.0), 6),
        "ledger_paid_rows": int(paid[0]), "ledger_paid_usd": round(float(paid[1]), 6), "ledger_kinds": {k: int(v) for k, v in kinds.items()},
        "unsettled": int(kinds.get("reserved", 0)), "outcomes": outcomes,
        "paid_by_refused": sum(store.spent(name)[0] for name, o in zip(names, outcomes) if o == "refused by the pool"),
        "held_after": report["held_usd"],
    }
