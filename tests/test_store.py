"""The store's contract, on both backends: the SQLite file under BARAPI_HOME and a real
PostgreSQL server (a throwaway cluster on a loopback port)."""

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

from barapi.errors import StoreError
from barapi.store import Store, home_dir, response_key

# What barapi wrote before Alembic (schema 1 of PRAGMA user_version): files like this still open.
SCHEMA_1 = [
    "CREATE TABLE label_sets (id INTEGER NOT NULL PRIMARY KEY, digest VARCHAR NOT NULL UNIQUE, labels VARCHAR NOT NULL)",
    "CREATE TABLE responses (key VARCHAR NOT NULL PRIMARY KEY, provider VARCHAR NOT NULL, model VARCHAR NOT NULL, label_set INTEGER NOT NULL, scores BLOB NOT NULL, created_at FLOAT NOT NULL)",
    "CREATE TABLE ledger (id INTEGER NOT NULL PRIMARY KEY, ts FLOAT NOT NULL, run VARCHAR NOT NULL, provider VARCHAR NOT NULL, model VARCHAR NOT NULL, image_key VARCHAR NOT NULL, kind VARCHAR NOT NULL, cost_usd FLOAT NOT NULL)",
    "CREATE INDEX ix_ledger_run ON ledger (run)",
    "CREATE TABLE runs (name VARCHAR NOT NULL PRIMARY KEY, created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, status VARCHAR NOT NULL, config VARCHAR NOT NULL, result VARCHAR NOT NULL DEFAULT '{}')",
    "CREATE TABLE checkpoints (run VARCHAR NOT NULL PRIMARY KEY, iteration INTEGER NOT NULL, state BLOB NOT NULL, updated_at FLOAT NOT NULL)",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, home: Path) -> Store:
    """The same contract against each backend."""
    if request.param == "sqlite":
        return Store(home)
    return Store(home, url=request.getfixturevalue("fresh_postgres_url"))


def test_barapi_home_relocates_all_state(home: Path) -> None:
    assert home_dir() == home
    store = Store()
    assert store.path.parent == home and store.path.exists()


def test_migrations_build_exactly_the_tables_the_models_describe(store: Store) -> None:
    inspector = inspect(store.engine)
    for table in SQLModel.metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == {c.name for c in table.columns}, table.name
    Store(store.home, url=None if store.path else str(store.engine.url.render_as_string(hide_password=False)))  # reopening migrates nothing


def test_an_older_database_is_migrated_forward(home: Path) -> None:
    home.mkdir(parents=True)
    connection = sqlite3.connect(home / "barapi.sqlite")
    for statement in SCHEMA_1:
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
    connection.execute("PRAGMA user_version = 7")
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


def test_a_database_from_a_newer_alembic_revision_is_refused_with_advice(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(StoreError, match="upgrade barapi"):
        Store(store.home, url=None if store.path else store.engine.url.render_as_string(hide_password=False))


def test_a_server_url_never_shows_its_password(home: Path, postgres_url: str) -> None:
    wrong = postgres_url.replace("127.0.0.1:", "127.0.0.1:1")  # a port nobody listens on
    with pytest.raises(StoreError) as refused:
        Store(home, url=wrong)
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in str(refused.value) and "***" in str(refused.value)
    assert password not in Store(home, url=postgres_url).where


def test_a_url_of_another_database_is_refused_with_what_to_write(home: Path) -> None:
    with pytest.raises(StoreError, match="postgresql://"):
        Store(home, url="mysql://u:p@localhost/db")


def test_a_run_trains_and_resumes_bit_identically_on_a_server(home: Path, fresh_postgres_url: str, tmp_path: Path) -> None:
    from fakes import ProjectionModel
    from test_trainer import config

    from barapi.errors import ProviderError
    from barapi.run.trainer import Trainer

    reference = Trainer(config(), ProjectionModel(), Store(tmp_path / "ref")).run()
    server = Store(home, url=fresh_postgres_url)
    with pytest.raises(ProviderError):
        Trainer(config(), ProjectionModel(fail_after=15), server).run()
    resumed = Trainer(config(), ProjectionModel(), Store(home, url=fresh_postgres_url)).run()
    assert resumed.program_sha256 == reference.program_sha256 and resumed.queries_paid == reference.queries_paid
    again = Trainer(config("second"), ProjectionModel(), Store(home, url=fresh_postgres_url)).run()
    assert again.queries_paid == 0  # the same images, answered for another run: free from the shared cache


def test_two_workers_caching_the_same_answer_both_succeed(store: Store) -> None:
    """On a shared store two runs can pay for the same image at once: the first answer stays."""
    other = Store(store.home, url=None if store.path else store.engine.url.render_as_string(hide_password=False))
    key = response_key("p", "s", b"same image")
    first, second = store.reserve("a", "p", "m", [key], 0.1), other.reserve("b", "p", "m", [key], 0.1)
    store.settle_paid(first, "p", "m", {key: {"x": 0.25, "y": 0.75}})
    other.settle_paid(second, "p", "m", {key: {"x": 0.5, "y": 0.5}})
    assert other.cached([key]) == {key: {"x": 0.25, "y": 0.75}}
    assert store.spent("a") == other.spent("b") == (1, 0.1)  # both paid: the ledger says who


def test_two_processes_never_drive_one_run_and_a_dead_ones_run_is_taken_over(store: Store, tmp_path: Path) -> None:
    from fakes import ProjectionModel
    from test_trainer import config

    from barapi.store import LeaseRow
    from barapi.run.trainer import Trainer

    elsewhere = "another-machine:4242:cafe0000"  # alive until its lease expires
    assert store.acquire_lease("run", elsewhere, ttl_s=60) is None
    with pytest.raises(StoreError, match="being driven by another process"):
        Trainer(config(), ProjectionModel(), store)
    with store.session() as session:  # its holder stopped renewing a minute ago
        session.merge(LeaseRow(run="run", holder=elsewhere, expires_at=0.0))
        session.commit()
    assert Trainer(config(), ProjectionModel(), store).run().status == "completed"
    assert store.acquire_lease("run", elsewhere, ttl_s=60) is None  # released when the run ended

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    with store.session() as session:  # a process of this machine that no longer exists
        session.merge(LeaseRow(run="run", holder=f"{socket.gethostname()}:{dead}:00000000", expires_at=time.time() + 3600))
        session.commit()
    Trainer(config(), ProjectionModel(), store)  # taken over at once, without waiting for the expiry


def test_a_pooled_connection_the_server_cut_is_replaced_when_its_pre_ping_is_refused(
    fresh_postgres_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg refuses the pool's pre-ping on a connection whose transaction state it lost
    ("can't change 'autocommit' now"), which SQLAlchemy does not count as a disconnect: the
    store's calls are repeated on a fresh connection; a statement's ProgrammingError is not."""
    import psycopg
    from sqlalchemy.dialects.postgresql._psycopg_common import _PGDialect_common_psycopg
    from sqlalchemy.exc import ProgrammingError

    from barapi.store.engine import _disconnected

    store = Store(home, url=fresh_postgres_url)
    assert not store.has_run("r")  # a connection in the pool
    ping, refused = _PGDialect_common_psycopg.do_ping, []

    def refuse_once(dialect, connection):  # noqa: ANN001, ANN202
        if not refused:
            refused.append(connection)
            raise psycopg.ProgrammingError("can't change 'autocommit' now: connection in transaction status INERROR")
        return ping(dialect, connection)

    monkeypatch.setattr(_PGDialect_common_psycopg, "do_ping", refuse_once)
    assert not store.has_run("r")
    assert len(refused) == 1 and refused[0].closed  # that connection discarded, the call repeated on a fresh one
    in_statement = ProgrammingError("SELECT nonsense", {}, psycopg.ProgrammingError("syntax error"))
    assert not _disconnected(in_statement)


def test_a_run_survives_its_server_connections_being_cut(home: Path, fresh_postgres_url: str, tmp_path: Path) -> None:
    """Every connection of the run's database is terminated five times a second: calls whose
    repeat is harmless reconnect and go on; a reservation cut mid-way stops the run with one
    clear error and stays counted, and resuming ends with the program of a run never cut."""
    import threading

    from fakes import ProjectionModel
    from sqlalchemy import create_engine
    from test_trainer import config

    from barapi.run.trainer import Trainer

    reference = Trainer(config(iterations=30), ProjectionModel(), Store(tmp_path / "ref")).run()
    admin = create_engine(fresh_postgres_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    database = fresh_postgres_url.rsplit("/", 1)[1]
    stop, cuts = threading.Event(), [0]

    def cut() -> None:
        while not stop.wait(0.2):
            with admin.connect() as connection:
                cuts[0] += connection.exec_driver_sql(
                    f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
                ).scalar()

    cutter = threading.Thread(target=cut)
    cutter.start()
    stopped: list[str] = []
    try:
        for _ in range(30):
            try:
                result = Trainer(config(iterations=30), ProjectionModel(), Store(home, url=fresh_postgres_url)).run()
                break
            except StoreError as error:
                stopped.append(str(error))
                assert "password" not in str(error) and "pg-SECRET" not in str(error)
    finally:
        stop.set()
        cutter.join()
    assert cuts[0] > 0
    assert result.program_sha256 == reference.program_sha256
    assert "reserved" not in Store(home, url=fresh_postgres_url).ledger_counts("run")  # settled, or counted as lost
