"""The store at a team's scale, on both backends: a pool's running total that the ledger can
verify, budget drawn in slices that never overspend, compact answers with an exact round trip,
and a store that reports its size and trims its cache without touching the ledger."""

from __future__ import annotations

import itertools
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from harness.pgcluster import store_engine
from sqlalchemy import event, text

from barapi.errors import BudgetExceeded
from barapi.store import Store
from barapi.store.codec import decode_scores, encode_scores
from barapi.store.engine import alembic_config
from barapi.store.slices import _LIVE_HOLDERS, DRAW_AHEAD_BELOW

# Races of real processes and threads: one at a time on one worker when the suite runs in parallel
# (pytest-xdist's loadgroup), so two never fight for the same two cores.
pytestmark = pytest.mark.xdist_group("races")


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str | None]:
    """Where every worker of a test opens the store: one SQLite home, or one server."""
    url = request.getfixturevalue("fresh_postgres_url") if request.param == "postgresql" else None
    return tmp_path / "home", url


def worker(location: tuple[Path, str | None], holder: str | None = None, ttl_s: float | None = None) -> Store:
    """One more process on the store, as far as the pool can tell."""
    store = Store(location[0], url=location[1])
    if holder is not None:
        store._slice_holder = holder
    if ttl_s is not None:
        store.slice_ttl_s = ttl_s
    return store


def die(store: Store) -> None:
    """What a SIGKILL leaves: the slice row in the store, nobody renewing or returning it."""
    for drawing in list(store._drawings.values()):
        drawing.stop.set()
        drawing.wake.set()
    store._drawings.clear()
    _LIVE_HOLDERS.discard(store._slice_holder)  # this process's registry of its live slices dies with it


def drawn(store: Store, pool: str = "team") -> float:
    with store.session() as session:
        return float(session.execute(text("SELECT drawn_usd FROM pools WHERE name = :p"), {"p": pool}).scalar())


def test_a_pools_running_total_agrees_with_its_ledger_through_slices_holds_releases_and_closes(location) -> None:
    a, b = worker(location), worker(location)
    a.set_pool("team", 10.0)
    a.reserve("ra", "p", "m", ["a1", "a2"], 0.01, pool="team")
    released = b.reserve("rb", "p", "m", ["b1"], 0.01, pool="team")
    b.settle_failed(released, maybe_billed=False)  # refused before any work: $0, on an open slice
    b.hold("team", "rb", "rb", 0.5, ttl_s=60)
    ending = b.reserve("rb", "p", "m", ["b2", "b3"], 0.01, pool="team", hold="rb")  # booked on the pool itself
    b.settle_failed(ending[:1], maybe_billed=False)  # gives its cost back to the pool's total
    b.settle_failed(ending[1:], maybe_billed=True)  # may have been billed: stays counted
    assert a.pool_verify("team")["ok"] and b.pool_report("team")["in_slices_usd"] > 0
    a.return_slices("ra")
    b.return_slices()
    b.release_hold("rb")
    check = a.pool_verify("team")
    assert check["ok"] and check["drawn_usd"] == pytest.approx(0.03)  # a1, a2 and b3: nothing left in slices
    assert a.pool_report("team")["spent_usd"] == pytest.approx(0.03) and a.pool_left("team") == pytest.approx(9.97)
    with a.session() as session:  # a total that drifted from the ledger is reported, with by how much
        session.execute(text("UPDATE pools SET drawn_usd = drawn_usd + 0.5 WHERE name = 'team'"))
        session.commit()
    assert a.pool_verify("team") | {"drawn_usd": None, "recomputed_usd": None} == {
        "pool": "team", "drawn_usd": None, "recomputed_usd": None, "difference_usd": pytest.approx(0.5), "ok": False}


def test_a_worker_books_on_its_slice_and_touches_the_pools_row_only_when_it_runs_out(location) -> None:
    store = worker(location)
    store.set_pool("team", 100.0)
    touching: list[str] = []  # the threads whose statements read or change the pool's row (a draw on a server: barapi_draw_slice)
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *rest: touching.append(threading.current_thread().name) if re.search(r"\bpools\b|barapi_draw_slice", sql) else None)
    for i in range(40):
        before = len(touching)
        store.reserve("r", "p", "m", [f"k{i}"], 0.01, pool="team")
        assert ("MainThread" in touching[before:]) == (i == 0), (i, touching)
        drawing = store._drawings[("team", "r")]
        # Paced like a run (each request takes a while): its thread has drawn the next slice
        # ahead by the time the one in use runs low.
        assert wait_for(lambda: drawing.spare is not None or drawing.current.unused >= DRAW_AHEAD_BELOW * drawing.current.granted)
    assert set(touching) == {"MainThread", "slices-r"}  # the first slice the booking drew; the others, its slices' thread
    assert wait_for(lambda: not store._drawings[("team", "r")].spent) and store.pool_verify("team")["ok"]  # spent slices closed
    other = worker(location)
    assert other.pool_left("team") == pytest.approx(100 - drawn(store))  # another worker sees the slices as taken
    assert store.pool_left("team", run="r") == pytest.approx(100 - 0.4)  # its own slices' rest is its own
    store.return_slices()
    assert drawn(store) == pytest.approx(0.4) and store.pool_verify("team")["ok"]


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_slice_takes_no_more_than_a_share_of_what_the_pool_has_free(location) -> None:
    store = worker(location)
    store.set_pool("team", 1.0)
    store.reserve("r", "p", "m", ["x"], 0.1, pool="team")  # its first grant: 1/8 of $1.00 free, more than the $0.10 asked
    # Down to $0.025, it is topped up in the background by 1/8 of the $0.875 then free.
    assert wait_for(lambda: drawn(store) == pytest.approx(0.125 + 0.875 / 8))
    with pytest.raises(BudgetExceeded, match=r"pool 'team' cannot cover \$0.8000 more: \$0.7656 free"):
        worker(location).reserve("s", "p", "m", [f"y{i}" for i in range(8)], 0.1, pool="team")
    worker(location).reserve("s", "p", "m", [f"y{i}" for i in range(7)], 0.1, pool="team")  # what a request needs, when it is more
    assert store.pool_verify("team")["ok"]


def test_a_killed_workers_slice_comes_back_after_its_lease_time(location) -> None:
    elsewhere = worker(location, holder="another-machine:4242:cafe", ttl_s=0.5)
    elsewhere.set_pool("team", 1.0)
    elsewhere.reserve("r", "p", "m", ["x"], 0.1, pool="team")
    die(elsewhere)
    survivor = worker(location)
    with pytest.raises(BudgetExceeded, match="spent or taken by running workers"):
        survivor.hold("team", "next", "next", 0.9, ttl_s=60)  # the dead worker's slice is still counted as taken
    time.sleep(0.6)
    survivor.hold("team", "next", "next", 0.9, ttl_s=60)  # expired: what it did not use ($0.025) came back
    assert drawn(survivor) == pytest.approx(0.1) and survivor.pool_verify("team")["ok"]


def test_a_slice_whose_holder_died_on_this_machine_comes_back_at_once(location) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = worker(location, holder=f"{socket.gethostname()}:{gone.stdout.strip()}:beef")
    dead.set_pool("team", 1.0)
    dead.reserve("r", "p", "m", ["x"], 0.1, pool="team")
    die(dead)
    worker(location).hold("team", "next", "next", 0.9, ttl_s=60)
    assert worker(location).pool_verify("team")["ok"]


def test_a_slice_closed_under_its_worker_is_never_booked_on_again(location) -> None:
    slow = worker(location, holder="another-machine:7:slow", ttl_s=60)
    slow.set_pool("team", 10.0)
    slow.reserve("r", "p", "m", ["x"], 0.1, pool="team")
    first = slow._drawings[("team", "r")].current.id
    with slow.session() as session:  # it stopped renewing long enough to be taken for dead
        session.execute(text("UPDATE pool_slices SET expires_at = 0"))
        session.commit()
    worker(location).close_dead_slices("team")  # as every worker's slices' thread does when it renews them
    slow.reserve("r", "p", "m", ["z"], 0.1, pool="team")  # its own bookkeeping had room: the store says no, it draws anew
    with slow.session() as session:
        rows = dict(session.execute(text("SELECT image_key, slice FROM ledger WHERE run = 'r'")).all())
    assert rows["x"] == first and rows["z"] != first
    assert slow.pool_verify("team")["ok"]


def test_workers_racing_on_slices_never_overspend_the_pool(location) -> None:
    budget, unit = 1.0, 0.01
    setup = worker(location)
    setup.set_pool("team", budget)
    booked: list[int] = []
    lock = threading.Lock()

    def spend(n: int) -> None:
        store = worker(location)
        count = 0
        try:
            while True:
                store.reserve(f"r{n}", "p", "m", [f"{n}-{count}-{i}" for i in range(3)], unit, pool="team")
                count += 3
        except BudgetExceeded:
            pass
        store.return_slices()
        with lock:
            booked.append(count)

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = setup.pool_report("team")
    assert report["spent_usd"] == pytest.approx(sum(booked) * unit) and report["spent_usd"] <= budget + 1e-9
    assert setup.pool_verify("team")["ok"] and report["in_slices_usd"] == 0
    # Nothing stuck in a slice: a worker refused while others still held slices stopped there, so
    # what is left is whatever they gave back; a fresh worker spends it to within one request.
    last, keys = worker(location), itertools.count()
    with pytest.raises(BudgetExceeded):
        while True:
            last.reserve("last", "p", "m", [f"last-{next(keys)}" for _ in range(3)], unit, pool="team")
    last.return_slices()
    assert budget - 3 * unit < setup.pool_report("team")["spent_usd"] <= budget + 1e-9


def test_an_existing_store_is_adopted_with_its_pools_totals_and_its_answers_as_they_were(location) -> None:
    home, url = location
    home.mkdir(parents=True)
    engine = store_engine(url, home)
    from alembic import command

    scores = np.array([0.1 + 0.2, 1 / 3], dtype="<f8")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0005")  # a store as the last release left it
        connection.execute(text("INSERT INTO pools (name, budget_usd, updated_at) VALUES ('team', 5, 0)"))
        for i, kind in enumerate(("paid", "failed", "lost", "released", "hit")):
            connection.execute(text("INSERT INTO ledger (ts, run, provider, model, image_key, kind, cost_usd, pool) "
                                    "VALUES (0, 'old', 'p', 'm', :key, :kind, :cost, 'team')"), {"key": f"k{i}", "kind": kind, "cost": 0.25})
        connection.execute(text("INSERT INTO label_sets (id, digest, labels) VALUES (1, 'd', :labels)"), {"labels": json.dumps(["a", "b"])})
        connection.execute(text("INSERT INTO responses (key, provider, model, label_set, scores, created_at) VALUES ('k0', 'p', 'm', 1, :s, 0)"),
                           {"s": scores.tobytes()})
    engine.dispose()
    store = worker(location)
    assert drawn(store) == pytest.approx(0.75) and store.pool_verify("team")["ok"]  # paid, failed and lost count
    assert store.cached(["k0"]) == {"k0": {"a": 0.1 + 0.2, "b": 1 / 3}}  # float64 answers read back bit for bit


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(0, 300), elements=st.floats(allow_nan=True, allow_infinity=True, width=64)))
def test_every_answer_reads_back_bit_for_bit(values: np.ndarray) -> None:
    codec, data = encode_scores(values)
    assert decode_scores(codec, data).tobytes() == values.astype("<f8").tobytes()


@given(arrays(np.float32, st.integers(1, 300), elements=st.floats(width=32, allow_nan=False)))
def test_float32_answers_take_at_most_half_their_float64_bytes(values: np.ndarray) -> None:
    codec, data = encode_scores(values.astype(np.float64))
    assert len(data) <= 4 * len(values) and decode_scores(codec, data).tobytes() == values.astype("<f8").tobytes()


def test_a_softmax_over_1000_labels_takes_less_than_half_its_float64_bytes_and_rounded_decimals_a_quarter() -> None:
    logits = np.random.default_rng(0).normal(0, 3, 1000).astype(np.float32)
    probabilities = (np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()).astype(np.float32).astype(np.float64)
    assert len(encode_scores(probabilities)[1]) < 0.5 * 8000
    rounded = np.round(probabilities, 6)  # as a JSON API that answers in 6 places
    codec, data = encode_scores(rounded)
    assert len(data) < 0.25 * 8000 and decode_scores(codec, data).tobytes() == rounded.tobytes()


def answer(store: Store, run: str, key: str, cost: float = 0.002) -> None:
    ids = store.reserve(run, "p", "m", [key], cost)
    store.settle_paid(ids, "p", "m", {key: {"a": 0.25, "b": 0.75}})


def test_stats_show_rows_and_bytes_and_trim_removes_answers_but_never_money(location) -> None:
    store = worker(location)
    answer(store, "a", "only-a")
    answer(store, "a", "shared")
    store.record_hits("b", "p", "m", ["shared"])  # run b read a's answer from the cache
    answer(store, "b", "only-b", cost=0.004)
    stats = store.store_stats()
    tables = {row["table"]: row for row in stats["tables"]}
    assert tables["responses"]["rows"] == 3 and tables["ledger"]["rows"] == 4 and tables["responses"]["bytes"] > 0
    by_run = {row["run"]: row for row in stats["runs"]}
    assert (by_run["a"]["cached_answers"], by_run["b"]["cached_answers"], by_run["b"]["spent_usd"]) == (2, 2, 0.004)
    assert stats["models"] == [{"provider": "p", "model": "m", "cached_answers": 3, "cached_bytes": 3 * 8}]  # two float32 scores each
    spent = store.spent("a"), store.spent("b")
    preview = store.trim_answers(["a"], dry_run=True)
    assert preview["answers"] == 1 and len(store.cached(["only-a", "shared", "only-b"])) == 3  # a dry run removes nothing
    trimmed = store.trim_answers(["a"])
    assert (trimmed["answers"], trimmed["kept_shared"]) == (1, 1)  # b still reads the shared one
    assert trimmed["resume_would_pay_again"] == [{"run": "a", "queries": 1, "usd": 0.002}]
    assert set(store.cached(["only-a", "shared", "only-b"])) == {"shared", "only-b"}
    assert (store.spent("a"), store.spent("b")) == spent  # the ledger's money figures are untouched
    assert store.trim_answers(older_than_s=3600)["answers"] == 0
    assert store.trim_answers(older_than_s=0)["answers"] == 2


def test_store_stats_trim_and_pool_verify_from_the_command_line(home: Path) -> None:
    from test_cli import invoke

    store = Store()
    store.set_pool("team", 1.0)
    answer(store, "a", "x")
    store.reserve("a", "p", "m", ["y"], 0.01, pool="team")
    shown = invoke("store", "stats")
    assert "responses" in shown.output and "ledger" in shown.output and shown.exit_code == 0
    assert {r["table"] for r in json.loads(invoke("store", "stats", "--json").output)["tables"]} >= {"responses", "ledger", "pools"}
    assert "would remove 1 cached answer(s)" in invoke("store", "trim", "--run", "a", "--dry-run").output
    assert "resuming it could pay again for up to 1 image(s), $0.0020" in invoke("store", "trim", "--run", "a").output
    missing = invoke("store", "trim")
    assert missing.exit_code == 1 and "--run NAME, --older-than DAYS" in missing.output
    assert "they agree" in invoke("pool", "show", "team", "--verify").output
    with store.session() as session:
        session.execute(text("UPDATE pools SET drawn_usd = drawn_usd + 1"))
        session.commit()
    drifted = invoke("pool", "show", "team", "--verify")
    assert drifted.exit_code == 1 and "DIFFERENCE $+1.000000" in drifted.output
