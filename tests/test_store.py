import sqlite3
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from barapi.errors import StoreError
from barapi.store import MIGRATIONS, Store, home_dir, response_key


def test_barapi_home_relocates_all_state(home: Path) -> None:
    assert home_dir() == home
    store = Store()
    assert store.path.parent == home and store.path.exists()


def test_migrations_build_exactly_the_tables_the_models_describe(store: Store) -> None:
    connection = sqlite3.connect(store.path)
    for table in SQLModel.metadata.sorted_tables:
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table.name})")}
        assert columns == {c.name for c in table.columns}, table.name
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_an_older_database_is_migrated_forward(home: Path) -> None:
    home.mkdir(parents=True)
    connection = sqlite3.connect(home / "barapi.sqlite")
    for statement in MIGRATIONS[0][1]:
        connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.execute("INSERT INTO runs VALUES ('old', 0, 0, 'completed', '{}', '{}')")
    connection.commit()
    connection.close()
    store = Store(home)
    assert store.has_run("old")
    assert store.metrics("old") == []  # the table migration 2 added exists


def test_a_newer_database_is_refused_with_advice(home: Path) -> None:
    home.mkdir(parents=True)
    connection = sqlite3.connect(home / "barapi.sqlite")
    connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    connection.close()
    with pytest.raises(StoreError, match="upgrade barapi"):
        Store(home)


def test_cache_round_trip_is_exact_and_never_keyed_by_secrets(store: Store) -> None:
    key = response_key("clarifai", "model|v1", b"image bytes")
    assert key == response_key("clarifai", "model|v1", b"image bytes")
    assert key != response_key("clarifai", "model|v2", b"image bytes")
    scores = {"b": 0.1 + 0.2, "a": 1 / 3}
    ids = store.reserve("run", "clarifai", "m", [key], 0.0012)
    store.settle_paid(ids, "clarifai", "m", {key: scores})
    assert store.cached([key, "missing"]) == {key: scores}


def test_ledger_counts_reserved_failed_and_lost_as_spent(store: Store) -> None:
    paid = store.reserve("r", "p", "m", ["a"], 0.5)
    store.settle_paid(paid, "p", "m", {"a": {"x": 1.0}})
    failed = store.reserve("r", "p", "m", ["b"], 0.5)
    store.settle_failed(failed, maybe_billed=True)
    released = store.reserve("r", "p", "m", ["c"], 0.5)
    store.settle_failed(released, maybe_billed=False)
    store.reserve("r", "p", "m", ["d"], 0.5)  # in flight when the process died
    assert store.mark_lost("r") == 1
    assert store.spent("r") == (3, 1.5)
    assert store.ledger_counts("r") == {"paid": 1, "failed": 1, "released": 1, "lost": 1}
    assert store.integrity_ok()


def test_unknown_run_says_how_to_list_runs(store: Store) -> None:
    with pytest.raises(StoreError, match="barapi runs list"):
        store.get_run("nope")
