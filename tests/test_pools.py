"""Budget pools: one dollar limit that runs in many processes share, on the SQLite file and on a
PostgreSQL server, checked by racing real `barapi train` processes against the local server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from harness.poolrace import POOL_USD, RUN, kill_race, race, store_of, worker
from sqlalchemy import text

from barapi.errors import BudgetExceeded, StoreError
from barapi.store import Store


# Races of real processes and threads: one at a time on one worker when the suite runs in parallel
# (pytest-xdist's loadgroup), so two never fight for the same two cores.
pytestmark = pytest.mark.xdist_group("races")

@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment every worker gets: one SQLite home, or one server (each its own home)."""
    if request.param == "sqlite":
        return {"BARAPI_HOME": str(tmp_path / "home")}
    return {"BARAPI_STORE": request.getfixturevalue("fresh_postgres_url")}


def assert_pool_held(results: list[tuple[int, str, str]], figures: dict) -> None:
    for code, _, err in results:
        assert "Traceback" not in err, err
    # Each run ended measured (a test accuracy), or was refused before paying anything.
    assert set(figures["outcomes"]) <= {"measured", "refused by the pool"}, figures["outcomes"]
    assert figures["paid_by_refused"] == 0 and figures["held_after"] == 0  # every run that ended gave its hold back
    assert figures["overrun_usd"] == 0 and figures["spent_usd"] <= POOL_USD + 1e-9  # never overspent together
    assert figures["unsettled"] == 0  # every reservation settled: paid, failed, released or lost
    assert (figures["ledger_paid_rows"], figures["ledger_paid_usd"]) == (figures["queries_paid"], figures["spent_usd"])


def test_a_pool_refuses_what_it_cannot_cover_and_reserves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(StoreError, match="barapi pool set team"):
        store.reserve("r", "p", "m", ["a"], 0.5, pool="team")
    store.set_pool("team", 1.0)
    store.reserve("r", "p", "m", ["a"], 0.5, pool="team")
    with pytest.raises(BudgetExceeded, match="pool 'team'"):
        store.reserve("other", "p", "m", ["b", "c"], 0.5, pool="team")
    assert store.pool_report("team") == {"pool": "team", "budget_usd": 1.0, "spent_usd": 0.5, "queries_paid": 1,
                                         "runs": [{"run": "r", "queries_paid": 1, "spent_usd": 0.5}], "held_usd": 0, "reserves": [],
                                         "in_slices_usd": 0.0}
    store.set_pool("team", 2.0)  # raised: the same request now fits
    store.reserve("other", "p", "m", ["b", "c"], 0.5, pool="team")
    assert store.pool_left("team") == pytest.approx(0.5)


@pytest.fixture(params=["sqlite", "postgresql"])
def pool_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store(tmp_path)
    return Store(tmp_path, url=request.getfixturevalue("fresh_postgres_url"))


def test_a_hold_keeps_a_runs_ending_from_every_other_spender_and_shrinks_as_it_ends(pool_store: Store) -> None:
    store = pool_store
    store.set_pool("team", 1.0)
    store.hold("team", "a", "a@1", 0.6, ttl_s=60)
    with pytest.raises(BudgetExceeded, match=r"has \$0.4000 left .* run 'b' needs \$0.5000 to end measured; nothing was sent"):
        store.hold("team", "b", "b@1", 0.5, ttl_s=60)
    assert store.pool_report("team")["reserves"] == [{"run": "a", "held_usd": 0.6}]
    store.hold("team", "b", "b@1", 0.3, ttl_s=60)
    # Training (no hold named) draws only on what is above every hold: $0.10 here.
    store.reserve("b", "p", "m", ["x"], 0.1, pool="team")
    with pytest.raises(BudgetExceeded, match="held for running runs"):
        store.reserve("a", "p", "m", ["y"], 0.1, pool="team")
    # The ending of run a uses its hold, which shrinks by what it cost; b's stays whole.
    store.reserve("a", "p", "m", ["y", "z"], 0.2, pool="team", hold="a@1")
    assert {r["run"]: r["held_usd"] for r in store.pool_report("team")["reserves"]} == {"a": 0.2, "b": 0.3}
    assert store.pool_left("team") == pytest.approx(0.0) and store.pool_left("team", excluding="a@1") == pytest.approx(0.2)
    store.release_hold("a@1")
    assert store.pool_left("team") == pytest.approx(0.2)


def test_a_killed_holders_reserve_comes_back_once_its_lease_expires(pool_store: Store) -> None:
    store = pool_store
    store.set_pool("team", 1.0)
    store.hold("team", "killed", "killed@1", 0.9, ttl_s=0.5)  # never renewed: its process died
    with pytest.raises(BudgetExceeded):
        store.hold("team", "next", "next@1", 0.5, ttl_s=60)
    time.sleep(0.6)
    store.hold("team", "next", "next@1", 0.5, ttl_s=60)  # the next process to look sees it gone
    assert store.pool_report("team")["reserves"] == [{"run": "next", "held_usd": 0.5}]


def server_is_waiting_on_a_lock(store: Store) -> bool:
    with store.engine.connect() as connection:
        return bool(connection.execute(text("SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).scalar())


@pytest.mark.parametrize("spender", ["a slice drawn", "another hold"])
def test_a_spender_waiting_for_the_pool_counts_the_hold_committed_while_it_waited(spender: str, tmp_path: Path, fresh_postgres_url: str) -> None:
    """On a server, a hold committed while a draw or another hold waits on the pool's row lock
    is counted by it: read as the waiting statement began, it was not, and the draw took the
    money the hold kept for another run's ending (that run ended unmeasured in the 8-worker race)."""
    store = Store(tmp_path, url=fresh_postgres_url)
    store.set_pool("team", 1.0)
    spend = {"a slice drawn": lambda: store.reserve("b", "p", "m", ["x", "y"], 0.1, pool="team"),
             "another hold": lambda: store.hold("team", "b", "b", 0.2, ttl_s=60)}[spender]
    outcome: list[str] = []

    def try_to_spend() -> None:
        try:
            spend()
            outcome.append("granted")
        except BudgetExceeded:
            outcome.append("refused")

    with store.engine.connect() as holding:  # what Store.hold does, stopped before its commit
        holding.execute(text("INSERT INTO pool_holds (holder, pool, run, usd, expires_at) VALUES ('a', 'team', 'a', 0.9, :until)"),
                        {"until": time.time() + 60})
        holding.execute(text("SELECT 1 FROM pools WHERE name = 'team' FOR UPDATE"))
        spender_thread = threading.Thread(target=try_to_spend)
        spender_thread.start()
        while not server_is_waiting_on_a_lock(store):
            time.sleep(0.01)
        holding.commit()
    spender_thread.join(timeout=30)
    assert outcome == ["refused"]  # $0.10 is left beside the hold, and it asked for $0.20
    report = store.pool_report("team")
    assert report["reserves"] == [{"run": "a", "held_usd": 0.9}] and store.pool_verify("team")["drawn_usd"] == 0.0


@pytest.mark.slow
def test_eight_workers_racing_for_one_pool_never_overspend_it(server_url: str, shared: dict[str, str], tmp_path: Path) -> None:
    results, figures = race(server_url, shared, tmp_path, steps=20)  # eight runs would want ~1,850 images of the pool's 1,000
    assert_pool_held(results, figures)
    assert figures["spent_usd"] >= POOL_USD - 0.05  # the pool was really raced to its end
    store = store_of(shared, tmp_path)
    for code, out, _ in results:  # the ledger agrees with what each finished run reported
        if code == 0:
            summary = json.loads(out.strip().splitlines()[-1])
            assert store.spent(summary["run"])[0] == summary["queries_paid"]


@pytest.mark.slow
def test_workers_on_a_pool_that_holds_the_reserves_of_only_some_end_measured_or_are_refused_unpaid(
    server_url: str, shared: dict[str, str], tmp_path: Path
) -> None:
    # Each run needs $0.084 to end measured (30 label-mapping, 30 closing and 10 test images at $1.20/1k).
    results, figures = race(server_url, shared, tmp_path, workers=6, pool_usd=0.20)
    assert_pool_held(results, figures)
    assert "measured" in figures["outcomes"] and "refused by the pool" in figures["outcomes"], figures["outcomes"]


@pytest.mark.slow
def test_four_workers_killed_at_random_and_resumed_elsewhere_never_overspend_it(server_url: str, shared: dict[str, str], tmp_path: Path) -> None:
    results, figures = kill_race(server_url, shared, tmp_path, steps=20)
    assert figures["kills"] >= 1
    assert_pool_held(results, figures)


@pytest.mark.slow
def test_a_second_run_on_the_same_images_through_another_process_pays_nothing(server_url: str, shared: dict[str, str], tmp_path: Path) -> None:
    small = [a for a in RUN if a not in ("--pool", "team")]
    first = worker(shared, tmp_path / "first", "train", "--base-url", server_url, *small, "--iterations", "3", "--name", "first")
    assert first.wait(timeout=300) == 0, first.communicate()[1]
    second = worker(shared, tmp_path / "second", "train", "--base-url", server_url, *small, "--iterations", "3", "--name", "second")
    assert second.wait(timeout=300) == 0, second.communicate()[1]
    summary = json.loads(second.communicate()[0].strip().splitlines()[-1])
    assert summary["queries_paid"] == 0 and summary["queries"] == summary["queries_cached"] > 0  # the first one's answers
    store = store_of(shared, tmp_path)
    assert store.spent("second") == (0, 0.0) and store.spent("first")[0] > 0  # the ledger says who paid


def test_pool_show_lists_what_runs_hold_apart_from_what_they_spent(home: Path) -> None:
    from test_cli import invoke

    store = Store()
    store.set_pool("team", 1.0)
    store.reserve("a", "p", "m", ["x"], 0.25, pool="team")
    store.hold("team", "a", "a", 0.5, ttl_s=60)
    shown = invoke("pool", "show", "team")
    assert "pool team: $0.2500 of $1.00" in shown.output
    assert "held for running runs to end measured (label mapping, closing pass, test set): $0.5000; free for training: $0.2500" in shown.output
    assert json.loads(invoke("pool", "show", "team", "--json").output)["reserves"] == [{"run": "a", "held_usd": 0.5}]
