"""All persistent state in one database: the response cache, the ledger, runs, checkpoints and
metric history. By default a SQLite file under BARAPI_HOME; with BARAPI_STORE set to a
``postgresql://`` URL, a PostgreSQL server that several processes and machines share.

Contracts:
- responses: keyed by a hash of (provider, cache scope, sha256 of the exact image bytes); the API
  key is never part of anything stored. No eviction.
- ledger: one row per image per attempt (and one per cache hit, at $0), append-only except
  that a 'reserved' row becomes 'paid', 'failed' (may have been billed: counted) or 'released'
  (refused before any work, e.g. throttled: $0) when its attempt ends; rows still 'reserved'
  after a crash become 'lost' (they may have been billed, so they stay counted).
- a paid response and its ledger rows are written in one transaction.
- checkpoints: the latest state of each run, replaced atomically with its metrics row.
- schema changes are ordered, named Alembic migrations (barapi/migrations) that run on both
  backends, so an older database still opens; SQLite files from before Alembic (versioned by
  PRAGMA user_version) are adopted at their version.
- the URL's password never appears in output, errors or stored rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache, wraps
from typing import Any, TypeVar
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlmodel import Field, Session, SQLModel, create_engine, select
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from barapi.errors import BudgetExceeded, StoreError

try:
    import fcntl
except ImportError:  # Windows: a single process at a time is the documented limit there
    fcntl = None  # type: ignore[assignment]

HOME_ENV = "BARAPI_HOME"
STORE_ENV = "BARAPI_STORE"
MIGRATION_LOCK_ID = 0xBA4A91
# A run's lease lasts this long past its holder's last renewal (every quarter of it).
LEASE_TTL_S = 60.0
DATABASE_NAME = "barapi.sqlite"
# Seconds a writer waits for another process's transaction before failing.
BUSY_TIMEOUT_S = 60
PAID_KINDS = ("paid", "failed", "reserved", "lost")
T = TypeVar("T")


def home_dir() -> Path:
    """BARAPI_HOME, else the platform's user data directory."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "barapi"
    if os.uname().sysname == "Darwin":
        return Path.home() / "Library" / "Application Support" / "barapi"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "barapi"


class LabelSet(SQLModel, table=True):
    """Label names, stored once per distinct set: a full ImageNet answer is 1,000 names."""

    __tablename__ = "label_sets"
    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(unique=True)
    labels: str


class Response(SQLModel, table=True):
    """One provider answer: float64 scores in the order of its label set (exact round trip)."""

    __tablename__ = "responses"
    key: str = Field(primary_key=True)
    provider: str
    model: str
    label_set: int
    scores: bytes
    created_at: float


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger"
    id: int | None = Field(default=None, primary_key=True)
    ts: float
    run: str = Field(index=True)
    provider: str
    model: str
    image_key: str
    kind: str
    cost_usd: float
    pool: str | None = Field(default=None, index=True)


class Pool(SQLModel, table=True):
    """A dollar limit shared by every run drawing on it, whatever process or machine."""

    __tablename__ = "pools"
    name: str = Field(primary_key=True)
    budget_usd: float
    updated_at: float


class PoolHoldRow(SQLModel, table=True):
    """Dollars a run keeps aside on a pool to end measured, while its holder renews them."""

    __tablename__ = "pool_holds"
    holder: str = Field(primary_key=True)
    pool: str = Field(index=True)
    run: str
    usd: float
    expires_at: float


class LeaseRow(SQLModel, table=True):
    """Which process drives a run, until when; renewed while it lives."""

    __tablename__ = "leases"
    run: str = Field(primary_key=True)
    holder: str
    expires_at: float


class RunRecord(SQLModel, table=True):
    __tablename__ = "runs"
    name: str = Field(primary_key=True)
    created_at: float
    updated_at: float
    status: str
    config: str
    result: str = "{}"


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"
    run: str = Field(primary_key=True)
    iteration: int
    state: bytes
    updated_at: float


class MetricRow(SQLModel, table=True):
    __tablename__ = "metrics"
    run: str = Field(primary_key=True)
    iteration: int = Field(primary_key=True)
    queries_paid: int
    queries_cached: int
    cost_usd: float
    loss: float | None = None
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    ts: float


MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The schema versions before Alembic (PRAGMA user_version) are the first revisions' names.
PRE_ALEMBIC_REVISIONS = {1: "0001", 2: "0002"}


def response_key(provider: str, scope: str, image: bytes) -> str:
    digest = hashlib.sha256(image).hexdigest()
    return hashlib.sha256(json.dumps([provider, scope, digest]).encode()).hexdigest()


# A call that lost its server connection is run again on a fresh one this many times in all.
RECONNECT_ATTEMPTS = 6


def _disconnected(error: BaseException) -> bool:
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def reconnecting(method: Callable[..., T]) -> Callable[..., T]:
    """Run a store call again on a fresh connection when the server connection was lost: only
    calls whose repeat is harmless carry this (reads, and writes that set a value or insert what
    is not there yet), so a call whose first try did commit changes nothing the second time."""

    @wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> T:
        retrying = Retrying(stop=stop_after_attempt(RECONNECT_ATTEMPTS), wait=wait_exponential(multiplier=0.25, max=8),
                            retry=retry_if_exception(_disconnected), reraise=True)
        try:
            return retrying(method, self, *args, **kwargs)
        except DBAPIError as error:
            if not _disconnected(error):
                raise
            raise StoreError(f"lost the connection to {self.where} ({RECONNECT_ATTEMPTS} tries): check the server; `barapi resume` carries on") from None

    return wrapper


def booking(method: Callable[..., T]) -> Callable[..., T]:
    """Calls that add ledger rows are not repeated (a repeat after an unseen commit would book
    twice): a lost connection stops the run, and what may have been reserved stays counted —
    the next process to open the run marks it lost."""

    @wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except DBAPIError as error:
            if not _disconnected(error):
                raise
            raise StoreError(f"lost the connection to {self.where} while booking images: what may have been reserved counts as "
                             "spent; `barapi resume` carries on once the server answers") from None

    return wrapper


class Store:
    def __init__(self, home: Path | None = None, url: str | None = None) -> None:
        """The store at ``url`` (else BARAPI_STORE, else BARAPI_HOME's SQLite file)."""
        self.home = home or home_dir()
        url = url or os.environ.get(STORE_ENV) or None
        if url is None:
            try:
                self.home.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(f"cannot create the state directory {self.home}: {error}; set {HOME_ENV} to a writable folder") from error
            self.path: Path | None = self.home / DATABASE_NAME
            self.engine = create_engine(f"sqlite:///{self.path}", connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S})
            event.listen(self.engine, "connect", _configure_connection)
            self.where = str(self.path)
        else:
            self.path = None
            self.engine = _server_engine(url)
            self.where = self.engine.url.render_as_string(hide_password=True)
        # SQLite allows one writer at a time; serialising this process's writers avoids
        # busy-waiting between our own threads (other processes still wait on busy_timeout).
        self._write_lock = threading.Lock()
        self._label_cache: dict[int, list[str]] = {}
        self._label_ids: dict[str, int] = {}
        self.migrate()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @staticmethod
    def price_file() -> Path:
        """The user's price overrides: {"provider": $/1k} or {"provider/model": $/1k}."""
        return home_dir() / "prices.json"

    def migrate(self) -> None:
        # Two processes opening a fresh store at once must not both run a migration: a file
        # lock beside a SQLite file, an advisory lock on a server.
        if self.path is not None:
            with _file_lock(self.home / ".migrate.lock"):
                self._apply_migrations()
        else:
            self._apply_migrations()

    def _apply_migrations(self) -> None:
        from alembic import command
        from alembic.util.exc import CommandError

        try:
            with self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
                current = _revision(connection)
                if current == _head():
                    return
                config = _alembic_config(connection)
                if current is None and self.dialect == "sqlite":
                    version = connection.exec_driver_sql("PRAGMA user_version").scalar() or 0
                    if version > max(PRE_ALEMBIC_REVISIONS):
                        raise StoreError(f"{self.where} was written by a newer barapi (schema {version}): upgrade barapi")
                    if version:
                        command.stamp(config, PRE_ALEMBIC_REVISIONS[version])
                command.upgrade(config, "head")
        except CommandError as error:
            raise StoreError(f"{self.where} was written by a newer barapi ({error}): upgrade barapi") from None
        except (OperationalError, DBAPIError) as error:
            raise StoreError(f"cannot open {self.where}: {_without_secrets(error, self.engine)}") from None

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- responses ---------------------------------------------------------------------------
    @reconnecting
    def cached(self, keys: Sequence[str]) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        with self.session() as session:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                for row in session.exec(select(Response).where(Response.key.in_(chunk))):
                    names = self._labels(session, row.label_set)
                    found[row.key] = dict(zip(names, np.frombuffer(row.scores, dtype="<f8").tolist()))
        return found

    def _labels(self, session: Session, label_set: int) -> list[str]:
        if label_set not in self._label_cache:
            self._label_cache[label_set] = json.loads(session.get(LabelSet, label_set).labels)
        return self._label_cache[label_set]

    def _label_set_id(self, session: Session, names: list[str]) -> int:
        encoded = json.dumps(names)
        digest = hashlib.sha256(encoded.encode()).hexdigest()
        if digest not in self._label_ids:
            row = session.exec(select(LabelSet).where(LabelSet.digest == digest)).first()
            if row is None:
                session.execute(self._insert_new(LabelSet).values(digest=digest, labels=encoded))
                row = session.exec(select(LabelSet).where(LabelSet.digest == digest)).one()
            self._label_ids[digest] = row.id
            self._label_cache[row.id] = names
        return self._label_ids[digest]

    # -- ledger ------------------------------------------------------------------------------
    @booking
    def record_hits(self, run: str, provider: str, model: str, keys: Iterable[str]) -> None:
        now = time.time()
        self._write([LedgerEntry(ts=now, run=run, provider=provider, model=model, image_key=k, kind="hit", cost_usd=0.0) for k in keys])

    @booking
    def reserve(
        self, run: str, provider: str, model: str, keys: Sequence[str], unit_cost: float, pool: str | None = None, hold: str | None = None,
    ) -> list[int]:
        """Ledger rows for images about to be sent. With a pool, atomically against every other
        reservation on it, from any process or machine: the pool's row is locked (a server) or
        the database is (SQLite's one write lock, taken by writing the rows first), the total is
        checked against what the pool has spent and what live holds keep aside, and nothing is
        reserved if the pool cannot cover them. With ``hold``, the images are that hold's (a run
        ending measured): they may use what it keeps aside, which shrinks by what they cost."""
        now = time.time()
        rows = [LedgerEntry(ts=now, run=run, provider=provider, model=model, image_key=k, kind="reserved", cost_usd=unit_cost, pool=pool) for k in keys]
        if pool is None:
            self._write(rows)
        else:
            with self._write_lock, self.session() as session:
                if self.dialect == "sqlite":
                    session.add_all(rows)
                    session.flush()  # writing first takes SQLite's one write lock before anything is read
                    budget = self._pool(session, pool).budget_usd
                else:
                    budget = self._pool(session, pool, lock=True).budget_usd
                    session.add_all(rows)
                    session.flush()
                spent, held = self._pool_spent(session, pool), self._pool_held(session, pool, excluding=hold)
                if spent + held > budget + 1e-9:
                    session.rollback()
                    raise BudgetExceeded(
                        f"pool {pool!r} cannot cover {len(rows)} more image(s): ${spent - len(rows) * unit_cost:.4f} of ${budget:.2f} "
                        f"spent and ${held:.4f} held for running runs to end measured; raise it with `barapi pool set {pool} --budget N`"
                    )
                if hold is not None:
                    session.execute(text("UPDATE pool_holds SET usd = CASE WHEN usd > :cost THEN usd - :cost ELSE 0 END WHERE holder = :holder"),
                                    {"cost": len(rows) * unit_cost, "holder": hold})
                session.commit()
        return [row.id for row in rows if row.id is not None]

    # -- leases ------------------------------------------------------------------------------
    @reconnecting
    def acquire_lease(self, run: str, holder: str, ttl_s: float) -> str | None:
        """Take the run for ``holder`` unless a live process holds it; returns that holder,
        or None once taken. A lease whose holder died (expired, or on this machine a process
        that no longer exists) is taken over. Atomic: one conditional UPDATE decides."""
        now = time.time()
        with self._write_lock, self.session() as session:
            session.execute(self._insert_new(LeaseRow).values(run=run, holder=holder, expires_at=now + ttl_s))
            current = session.get(LeaseRow, run)
            dead = current.holder if current is not None and not holder_alive(current.holder) else ""
            session.expunge_all()
            taken = session.execute(
                text("UPDATE leases SET holder = :holder, expires_at = :until WHERE run = :run "
                     "AND (holder = :holder OR holder = :dead OR expires_at < :now)"),
                {"holder": holder, "until": now + ttl_s, "run": run, "dead": dead, "now": now},
            ).rowcount
            session.commit()
        return None if taken else (current.holder if current is not None else "another process")

    @reconnecting
    def renew_lease(self, run: str, holder: str, ttl_s: float) -> bool:
        """False when the lease is no longer ``holder``'s (it expired and was taken over)."""
        with self._write_lock, self.session() as session:
            renewed = session.execute(
                text("UPDATE leases SET expires_at = :until WHERE run = :run AND holder = :holder"),
                {"until": time.time() + ttl_s, "run": run, "holder": holder},
            ).rowcount
            session.commit()
        return bool(renewed)

    @reconnecting
    def release_lease(self, run: str, holder: str) -> None:
        with self._write_lock, self.session() as session:
            session.execute(text("DELETE FROM leases WHERE run = :run AND holder = :holder"), {"run": run, "holder": holder})
            session.commit()

    # -- pools -------------------------------------------------------------------------------
    @reconnecting
    def set_pool(self, name: str, budget_usd: float) -> None:
        with self._write_lock, self.session() as session:
            session.merge(Pool(name=name, budget_usd=budget_usd, updated_at=time.time()))
            session.commit()

    @reconnecting
    def pool_left(self, name: str, excluding: str | None = None) -> float:
        """Dollars the pool can still pay for: what no run on it has spent, reserved or holds
        aside to end measured (but the hold ``excluding``, whose images may use it)."""
        with self.session() as session:
            return self._pool(session, name).budget_usd - self._pool_spent(session, name) - self._pool_held(session, name, excluding)

    @reconnecting
    def hold(self, pool: str, run: str, holder: str, usd: float, ttl_s: float) -> None:
        """Keep ``usd`` of the pool aside for ``holder`` (a run's ending), atomically like a
        reservation; refused, with what the pool has and what the run needs, if it cannot."""
        now = time.time()
        with self._write_lock, self.session() as session:
            session.execute(text("DELETE FROM pool_holds WHERE holder = :holder"), {"holder": holder})
            session.add(PoolHoldRow(holder=holder, pool=pool, run=run, usd=usd, expires_at=now + ttl_s))
            session.flush()  # SQLite: the write lock, before anything is read
            budget = self._pool(session, pool, lock=self.dialect != "sqlite").budget_usd
            spent, held = self._pool_spent(session, pool), self._pool_held(session, pool, excluding=holder)
            if spent + held + usd > budget + 1e-9:
                session.rollback()
                raise BudgetExceeded(
                    f"pool {pool!r} has ${max(budget - spent - held, 0.0):.4f} left (of ${budget:.2f}: ${spent:.4f} spent, ${held:.4f} held "
                    f"for running runs to end measured) and run {run!r} needs ${usd:.4f} to end measured; nothing was sent. "
                    f"Raise the pool with `barapi pool set {pool} --budget N`, or wait for the runs on it to end"
                )
            session.commit()

    @reconnecting
    def renew_hold(self, holder: str, ttl_s: float) -> bool:
        with self._write_lock, self.session() as session:
            renewed = session.execute(text("UPDATE pool_holds SET expires_at = :until WHERE holder = :holder"),
                                      {"until": time.time() + ttl_s, "holder": holder}).rowcount
            session.commit()
        return bool(renewed)

    @reconnecting
    def release_hold(self, holder: str) -> None:
        with self._write_lock, self.session() as session:
            session.execute(text("DELETE FROM pool_holds WHERE holder = :holder"), {"holder": holder})
            session.commit()

    @reconnecting
    def pool_report(self, name: str) -> dict:
        """The pool's limit and spend, in all and by run."""
        with self.session() as session:
            budget = self._pool(session, name).budget_usd
            rows = session.execute(
                text(f"SELECT run, COUNT(*), COALESCE(SUM(cost_usd), 0) FROM ledger WHERE pool = :pool AND kind IN {PAID_KINDS} GROUP BY run ORDER BY run"),
                {"pool": name},
            ).all()
            holds = session.execute(
                text("SELECT run, COALESCE(SUM(usd), 0) FROM pool_holds WHERE pool = :pool AND expires_at >= :now GROUP BY run ORDER BY run"),
                {"pool": name, "now": time.time()},
            ).all()
        runs = [{"run": run, "queries_paid": int(n), "spent_usd": round(float(cost), 6)} for run, n, cost in rows]
        reserves = [{"run": run, "held_usd": round(float(usd), 6)} for run, usd in holds]
        return {
            "pool": name, "budget_usd": budget, "spent_usd": round(sum(r["spent_usd"] for r in runs), 6),
            "queries_paid": sum(r["queries_paid"] for r in runs), "runs": runs,
            "held_usd": round(sum(r["held_usd"] for r in reserves), 6), "reserves": reserves,
        }

    def _pool(self, session: Session, name: str, lock: bool = False) -> Pool:
        """The pool; with ``lock``, its row locked (SELECT … FOR UPDATE) until the transaction ends."""
        pool = session.get(Pool, name, with_for_update=lock)
        if pool is None:
            raise StoreError(f"no pool named {name!r} in {self.where}: create it with `barapi pool set {name} --budget N`")
        return pool

    @staticmethod
    def _pool_held(session: Session, name: str, excluding: str | None = None) -> float:
        """What live holds keep aside (a hold whose holder stopped renewing it has expired)."""
        return float(session.execute(
            text("SELECT COALESCE(SUM(usd), 0) FROM pool_holds WHERE pool = :pool AND expires_at >= :now AND holder != :excluding"),
            {"pool": name, "now": time.time(), "excluding": excluding or ""},
        ).scalar())

    @staticmethod
    def _pool_spent(session: Session, name: str) -> float:
        return float(session.execute(
            text(f"SELECT COALESCE(SUM(cost_usd), 0) FROM ledger WHERE pool = :pool AND kind IN {PAID_KINDS}"), {"pool": name},
        ).scalar())

    @reconnecting
    def settle_paid(self, ids: Sequence[int], provider: str, model: str, answers: dict[str, dict[str, float]]) -> None:
        now = time.time()
        with self._write_lock, self.session() as session, self._forget_labels_on_error():
            self._set_kind(session, ids, "paid")
            for key, scores in answers.items():
                names = sorted(scores)
                values = np.asarray([scores[n] for n in names], dtype="<f8").tobytes()
                label_set = self._label_set_id(session, names)
                # Another worker on a shared store may have cached the same image meanwhile:
                # the first answer stays, nobody fails.
                row = {"key": key, "provider": provider, "model": model, "label_set": label_set, "scores": values, "created_at": now}
                session.execute(self._insert_new(Response).values(**row))
            session.commit()

    @contextlib.contextmanager
    def _forget_labels_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._label_ids.clear()  # an id flushed in a rolled-back transaction is not real
            raise

    @reconnecting
    def settle_failed(self, ids: Sequence[int], maybe_billed: bool) -> None:
        with self._write_lock, self.session() as session:
            if maybe_billed:
                self._set_kind(session, ids, "failed")
            else:
                session.execute(text(f"UPDATE ledger SET kind = 'released', cost_usd = 0 WHERE id IN ({_placeholders(ids)})"), _params(ids))
            session.commit()

    @reconnecting
    def mark_lost(self, run: str) -> int:
        with self._write_lock, self.session() as session:
            result = session.execute(text("UPDATE ledger SET kind = 'lost' WHERE run = :run AND kind = 'reserved'"), {"run": run})
            session.commit()
            return result.rowcount

    @reconnecting
    def spent(self, run: str) -> tuple[int, float]:
        with self.session() as session:
            row = session.execute(
                text(f"SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM ledger WHERE run = :run AND kind IN {PAID_KINDS}"),
                {"run": run},
            ).one()
        return int(row[0]), float(row[1])

    @reconnecting
    def ledger_counts(self, run: str) -> dict[str, int]:
        with self.session() as session:
            rows = session.execute(text("SELECT kind, COUNT(*) FROM ledger WHERE run = :run GROUP BY kind"), {"run": run}).all()
        return {kind: int(n) for kind, n in rows}

    # -- runs, checkpoints, metrics ----------------------------------------------------------
    @reconnecting
    def get_run(self, name: str) -> RunRecord:
        with self.session() as session:
            run = session.get(RunRecord, name)
        if run is None:
            raise StoreError(f"no run named {name!r} in {self.where}: `barapi runs list` shows the runs")
        return run

    @reconnecting
    def has_run(self, name: str) -> bool:
        with self.session() as session:
            return session.get(RunRecord, name) is not None

    @reconnecting
    def list_runs(self) -> list[RunRecord]:
        with self.session() as session:
            return list(session.exec(select(RunRecord).order_by(RunRecord.created_at)))

    @reconnecting
    def save_run(self, run: RunRecord) -> None:
        run.updated_at = time.time()
        with self._write_lock, self.session() as session:
            session.merge(run)
            session.commit()

    @reconnecting
    def save_checkpoint(self, run: RunRecord, iteration: int, state: bytes, metrics: MetricRow) -> None:
        """Checkpoint, metrics row and run row in one transaction: all or nothing."""
        now = time.time()
        run.updated_at = now
        with self._write_lock, self.session() as session:
            session.merge(Checkpoint(run=run.name, iteration=iteration, state=state, updated_at=now))
            session.merge(metrics)
            session.merge(run)
            session.commit()

    @reconnecting
    def load_checkpoint(self, name: str) -> Checkpoint | None:
        with self.session() as session:
            return session.get(Checkpoint, name)

    @reconnecting
    def metrics(self, name: str) -> list[MetricRow]:
        with self.session() as session:
            return list(session.exec(select(MetricRow).where(MetricRow.run == name).order_by(MetricRow.iteration)))

    def integrity_ok(self) -> bool:
        """SQLite's own check of the file; a server checks itself."""
        if self.dialect != "sqlite":
            return True
        with self.engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"

    def _write(self, rows: list[SQLModel]) -> None:
        with self._write_lock, self.session() as session:
            session.add_all(rows)
            session.commit()

    def _insert_new(self, model: type[SQLModel]):  # noqa: ANN202 - a dialect's Insert
        """INSERT that leaves a row already there (same key) alone, on either backend."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if self.dialect == "postgresql" else sqlite
        return dialect.insert(model.__table__).on_conflict_do_nothing()

    @staticmethod
    def _set_kind(session: Session, ids: Sequence[int], kind: str) -> None:
        session.execute(text(f"UPDATE ledger SET kind = :kind WHERE id IN ({_placeholders(ids)})"), {"kind": kind} | _params(ids))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _placeholders(ids: Sequence[int]) -> str:
    return ", ".join(f":i{n}" for n in range(len(ids))) or "NULL"


def _params(ids: Sequence[int]) -> dict[str, int]:
    return {f"i{n}": i for n, i in enumerate(ids)}


def _configure_connection(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API object
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash (kill -9); only an OS crash may lose the
    # last transactions, which then are requests paid again, never money unaccounted.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def _server_engine(url: str) -> Engine:
    """A PostgreSQL server's engine (psycopg 3); refuses other URLs with what to write."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"{STORE_ENV} is not a database URL: write postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from None
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"{STORE_ENV}: {parsed.get_backend_name()} is not supported: use postgresql://… (or unset it for the SQLite file)")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(parsed, pool_pre_ping=True, pool_size=4, max_overflow=8)
    except ModuleNotFoundError:
        raise StoreError("PostgreSQL needs psycopg: pip install 'barapi[postgres]'") from None


def _without_secrets(error: Exception, engine: Engine) -> str:
    text_ = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    password = engine.url.password
    return text_.replace(str(password), "***") if password else text_


@cache
def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _alembic_config(connection: Connection):  # noqa: ANN202 - alembic's Config
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _revision(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def lease_holder() -> str:
    """This process, as a lease names it: machine, process id and a nonce (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_alive(holder: str) -> bool:
    """False for a holder known not to be driving anymore: a process of this machine that is
    gone, or this very process (its earlier Trainer: one process drives a run at a time). A
    holder on another machine is alive until its lease expires."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """This process's hold on a run while it drives it: taken at once (or refused while another
    live process holds it), renewed every ``ttl_s / 4`` by a daemon thread, released when the
    run stops. A holder killed on this machine is seen dead at once; one on another machine
    after ``ttl_s`` without renewal."""

    def __init__(self, store: Store, run: str, ttl_s: float = LEASE_TTL_S) -> None:
        self.store, self.run, self.ttl_s = store, run, ttl_s
        self.holder = lease_holder()
        other = store.acquire_lease(run, self.holder, ttl_s)
        if other is not None:
            raise StoreError(
                f"run {run!r} is being driven by another process ({other}): two cannot drive one run; if that process died "
                f"on another machine, its lease expires {ttl_s:.0f} s after its last renewal and `barapi resume {run}` takes over"
            )
        self.lost = False
        self._stop = renewing(lambda: store.renew_lease(run, self.holder, ttl_s), ttl_s, self._lose, f"lease-{run}")

    def _lose(self) -> None:
        self.lost = True

    def check(self) -> None:
        """Stop driving a run another process has taken over (this one was thought dead)."""
        if self.lost:
            raise StoreError(f"run {self.run!r} was taken over by another process: this one stops")

    def release(self) -> None:
        self._stop.set()
        self.store.release_lease(self.run, self.holder)


def renewing(renew: Callable[[], bool], ttl_s: float, on_lost: Callable[[], None], name: str) -> threading.Event:
    """Call ``renew`` every ``ttl_s / 4`` in a daemon thread until the returned event is set;
    ``on_lost`` once it returns False (what it renewed expired and was taken)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(ttl_s / 4):
            try:
                if not renew():
                    on_lost()
                    return
            except (OperationalError, DBAPIError):
                continue  # the server is unreachable for now: the next renewal tries again

    threading.Thread(target=loop, name=name, daemon=True).start()
    return stop


class PoolHold:
    """What a run (or an evaluation) on a pool keeps aside to end measured: booked before its
    first query or refused, renewed while this process lives, drawn on by the images that end it
    (``Store.reserve(hold=…)``), released when it stops. A holder killed and never resumed stops
    renewing: its hold expires ``ttl_s`` later and the next process that looks sees it gone."""

    def __init__(self, store: Store, pool: str, run: str, usd: float, holder: str, ttl_s: float = LEASE_TTL_S) -> None:
        """``holder``: the run's name for the run itself (a resumed run replaces the hold its
        killed process left), something unique for anything else."""
        self.store, self.holder = store, holder
        store.hold(pool, run, self.holder, usd, ttl_s)
        self._stop = renewing(lambda: store.renew_hold(self.holder, ttl_s), ttl_s, lambda: None, f"hold-{run}")

    def release(self) -> None:
        self._stop.set()
        self.store.release_hold(self.holder)
