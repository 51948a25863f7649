"""Budget pools: one dollar limit that runs in many processes share, on the SQLite file and on a
PostgreSQL server, checked by racing real `barapi train` processes against the local server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from poolrace import POOL_USD, RUN, kill_race, race, store_of, worker

from barapi.errors import BudgetExceeded, StoreError
from barapi.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment every worker gets: one SQLite home, or one server (each its own home)."""
    if request.param == "sqlite":
        return {"BARAPI_HOME": str(tmp_path / "home")}
    return {"BARAPI_STORE": request.getfixturevalue("fresh_postgres_url")}


def assert_pool_held(results: list[tuple[int, str, str]], figures: dict) -> None:
    for code, _, err in results:
        assert "Traceback" not in err, err
    assert all(not o.startswith("failed") for o in figures["outcomes"]), figures["outcomes"]  # ended measured, or refused
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
                                         "runs": [{"run": "r", "queries_paid": 1, "spent_usd": 0.5}]}
    store.set_pool("team", 2.0)  # raised: the same request now fits
    store.reserve("other", "p", "m", ["b", "c"], 0.5, pool="team")
    assert store.pool_left("team") == pytest.approx(0.5)


@pytest.mark.slow
def test_eight_workers_racing_for_one_pool_never_overspend_it(server_url: str, shared: dict[str, str], tmp_path: Path) -> None:
    results, figures = race(server_url, shared, tmp_path)
    assert_pool_held(results, figures)
    assert figures["spent_usd"] >= POOL_USD - 0.05  # the pool was really raced to its end
    store = store_of(shared, tmp_path)
    for code, out, _ in results:  # the ledger agrees with what each finished run reported
        if code == 0:
            summary = json.loads(out.strip().splitlines()[-1])
            assert store.spent(summary["run"])[0] == summary["queries_paid"]


@pytest.mark.slow
def test_four_workers_killed_at_random_and_resumed_elsewhere_never_overspend_it(server_url: str, shared: dict[str, str], tmp_path: Path) -> None:
    results, figures = kill_race(server_url, shared, tmp_path)
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
