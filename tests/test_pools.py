"""Budget pools: one dollar limit that runs in many processes share, on the SQLite file and on a
PostgreSQL server, checked by racing real `barapi train` processes against the local server."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from barapi.errors import BudgetExceeded, StoreError
from barapi.store import PAID_KINDS, Store

# $1.20 at $1.20 / 1,000: the pool buys 1,000 images; eight runs would want ~2,500.
POOL_USD, PRICE = 1.20, "1.20"
RUN = ["--dataset", "digits", "--train-per-class", "3", "--test-size", "10", "--iterations", "30", "--batch-size", "4",
       "--q", "1", "--estimator", "one-sided", "--concurrency", "2", "--price-per-1k", PRICE, "--pool", "team", "--yes", "--json"]


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment every worker gets: one SQLite home, or one server (each its own home)."""
    if request.param == "sqlite":
        return {"BARAPI_HOME": str(tmp_path / "home")}
    return {"BARAPI_STORE": request.getfixturevalue("fresh_postgres_url")}


def store_of(shared: dict[str, str], tmp_path: Path) -> Store:
    return Store(Path(shared.get("BARAPI_HOME", tmp_path / "observer")), url=shared.get("BARAPI_STORE"))


def worker(shared: dict[str, str], home: Path, *args: str) -> subprocess.Popen:
    env = os.environ | {"BARAPI_HOME": str(home)} | shared
    return subprocess.Popen([sys.executable, "-m", "barapi.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_pool_held(store: Store) -> None:
    report = store.pool_report("team")
    assert report["spent_usd"] <= POOL_USD + 1e-9, report  # never overspent together
    with store.session() as session:
        kinds = dict(session.execute(store_text("SELECT kind, COUNT(*) FROM ledger WHERE pool = 'team' GROUP BY kind")).all())
        paid = session.execute(store_text(f"SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM ledger WHERE pool = 'team' AND kind IN {PAID_KINDS}")).one()
    assert "reserved" not in kinds, kinds  # every reservation settled: paid, failed, released or lost
    assert (int(paid[0]), round(float(paid[1]), 6)) == (report["queries_paid"], report["spent_usd"])
    assert report["queries_paid"] <= 1000


def store_text(sql: str):  # noqa: ANN201
    from sqlalchemy import text

    return text(sql)


def test_a_pool_refuses_what_it_cannot_cover_and_reserves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(StoreError, match="barapi pool set team"):
        store.reserve("r", "p", "m", ["a"], 0.5, pool="team")
    store.set_pool("team", 1.0)
    store.reserve("r", "p", "m", ["a"], 0.5, pool="team")
    with pytest.raises(BudgetExceeded, match="pool 'team'"):
        store.reserve("other", "p", "m", ["b", "c"], 0.5, pool="team")
    assert store.pool_report("team") == {"pool": "team", "budget_usd": 1.0, "spent_usd": 0.5, "queries_paid": 1,
                                         "runs": [{"run": "r", "queries_paid": 1, "spent_usd": 0.5}]}
    store.set_pool("team", 2.0)  # raised: the same request now fits
    store.reserve("other", "p", "m", ["b", "c"], 0.5, pool="team")
    assert store.pool_left("team") == pytest.approx(0.5)


@pytest.mark.slow
def test_eight_workers_racing_for_one_pool_never_overspend_it(server_url: str, shared: dict[str, str], tmp_path: Path) -> None:
    store = store_of(shared, tmp_path)
    store.set_pool("team", POOL_USD)
    workers = [worker(shared, tmp_path / f"w{i}", "train", "--base-url", server_url, *RUN, "--seed", str(i), "--name", f"w{i}")
               for i in range(8)]
    outcomes = [(w.wait(timeout=600), *w.communicate()) for w in workers]
    for code, out, err in outcomes:
        # Each ends measured within the pool, stops when the pool is spent, or is refused
        # before its first query: never a crash.
        assert "Traceback" not in err, err
        assert code == 0 or "pool 'team'" in err or "cannot cover" in err, err
    assert_pool_held(store)
    assert store.pool_report("team")["spent_usd"] >= POOL_USD - 0.05  # the pool was really raced to its end
    finished = [json.loads(out.strip().splitlines()[-1]) for code, out, _ in outcomes if code == 0]
    for summary in finished:  # the ledger agrees with what each run reported
        assert store.spent(summary["run"])[0] == summary["queries_paid"]


@pytest.mark.slow
def test_four_workers_killed_at_random_and_resumed_elsewhere_never_overspend_it(server_url: str, shared: dict[str, str], tmp_path: Path) -> None:
    store = store_of(shared, tmp_path)
    store.set_pool("team", POOL_USD)
    rng = random.Random(7)
    names = [f"k{i}" for i in range(4)]
    processes = {name: worker(shared, tmp_path / f"{name}-0", "train", "--base-url", server_url, *RUN, "--seed", str(i), "--name", name)
                 for i, name in enumerate(names)}
    kills = 0
    for round_ in range(1, 3):
        for name, process in list(processes.items()):
            try:
                process.wait(timeout=rng.uniform(1.0, 4.0))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                if store.has_run(name):  # resumed by another process, with another home: "elsewhere"
                    processes[name] = worker(shared, tmp_path / f"{name}-{round_}", "resume", name, "--json")
                else:
                    seed = str(names.index(name))
                    processes[name] = worker(shared, tmp_path / f"{name}-{round_}", "train", "--base-url", server_url, *RUN, "--seed", seed, "--name", name)
    for process in processes.values():
        code = process.wait(timeout=600)
        _, err = process.communicate()
        assert "Traceback" not in err and (code == 0 or "pool 'team'" in err or "cannot cover" in err), err
    assert kills >= 1
    for name in names:
        store.mark_lost(name)  # what a killed worker had in flight: counted, never dropped
    assert_pool_held(store)
