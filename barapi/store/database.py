"""The Store: one database (a SQLite file, or a PostgreSQL server shared by a team) holding the
cache, the ledger, pools and runs."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Connection, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, SQLModel, create_engine

from barapi.errors import StoreError
from barapi.store.engine import (
    BUSY_TIMEOUT_S, DATABASE_NAME, HOME_ENV, MIGRATION_LOCK_ID, PRE_ALEMBIC_REVISIONS, STORE_ENV, alembic_config, configure_connection, file_lock,
    head, home_dir, params, placeholders, revision, server_engine, without_secrets,
)
from barapi.store.ledger import CacheAndLedger
from barapi.store.pools import Pools
from barapi.store.runs import Runs
from barapi.store.sizes import Sizes
from barapi.store.slices import Slices


class Store(CacheAndLedger, Pools, Slices, Runs, Sizes):
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
            event.listen(self.engine, "connect", configure_connection)
            self.where = str(self.path)
        else:
            self.path = None
            self.engine = server_engine(url)
            self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")  # one-statement bookings and draws
            self.where = self.engine.url.render_as_string(hide_password=True)
        # SQLite allows one writer at a time; serialising this process's writers avoids
        # busy-waiting between our own threads (other processes still wait on busy_timeout). A
        # server takes concurrent writers: there a thread waiting on a pool's row lock must not
        # hold up this process's other bookings.
        self._write_lock = threading.Lock() if self.path is not None else contextlib.nullcontext()
        self._label_cache: dict[int, list[str]] = {}
        self._label_ids: dict[str, int] = {}
        self._init_slices()
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
            with file_lock(self.home / ".migrate.lock"):
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
                current = revision(connection)
                if current == head():
                    return
                config = alembic_config(connection)
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
            raise StoreError(f"cannot open {self.where}: {without_secrets(error, self.engine)}") from None

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def integrity_ok(self) -> bool:
        """SQLite's own check of the file; a server checks itself."""
        if self.dialect != "sqlite":
            return True
        with self.engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"

    def _insert_new(self, model: type[SQLModel]):  # noqa: ANN202 - a dialect's Insert
        """INSERT that leaves a row already there (same key) alone, on either backend."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if self.dialect == "postgresql" else sqlite
        return dialect.insert(model.__table__).on_conflict_do_nothing()

    @staticmethod
    def _set_kind(connection: Connection, ids: Sequence[int], kind: str) -> None:
        connection.execute(text(f"UPDATE ledger SET kind = :kind WHERE id IN ({placeholders(ids)})"), {"kind": kind} | params(ids))
