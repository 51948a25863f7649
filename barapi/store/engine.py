"""Opening a store: where it lives, its engine (SQLite or PostgreSQL), migrations, and what to
do when a server connection drops."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from functools import cache, wraps
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, ProgrammingError
from sqlmodel import create_engine
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from barapi.errors import StoreError

try:
    import fcntl
except ImportError:  # Windows: a single process at a time is the documented limit there
    fcntl = None  # type: ignore[assignment]

HOME_ENV = "BARAPI_HOME"
STORE_ENV = "BARAPI_STORE"
MIGRATION_LOCK_ID = 0xBA4A91
DATABASE_NAME = "barapi.sqlite"
# Seconds a writer waits for another process's transaction before failing.
BUSY_TIMEOUT_S = 60
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The schema versions before Alembic (PRAGMA user_version) are the first revisions' names.
PRE_ALEMBIC_REVISIONS = {1: "0001", 2: "0002"}
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


# A call that lost its server connection is run again on a fresh one this many times in all.
RECONNECT_ATTEMPTS = 6


def _disconnected(error: BaseException) -> bool:
    """The call lost its server connection: the driver says so, or no connection could be checked
    out of the pool (no statement was sent). The second covers psycopg refusing the pool's
    pre-ping on a connection the server cut: it cannot switch autocommit on a connection whose
    transaction state it lost, a ProgrammingError that SQLAlchemy does not count as a disconnect
    (the pool discards that connection, so a repeat gets a fresh one)."""
    if not isinstance(error, DBAPIError):
        return False
    return bool(error.connection_invalidated) or (isinstance(error, ProgrammingError) and error.statement is None)


def reconnecting(method: Callable[..., T]) -> Callable[..., T]:
    """Run a store call again on a fresh connection when the server connection was lost: only
    calls whose repeat is harmless carry this (reads, and writes that set a value or insert what
    is not there yet), so a call whose first try did commit changes nothing the second time."""

    @wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
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
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except DBAPIError as error:
            if not _disconnected(error):
                raise
            raise StoreError(f"lost the connection to {self.where} while booking images: what may have been reserved counts as "
                             "spent; `barapi resume` carries on once the server answers") from None

    return wrapper


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def placeholders(ids: Sequence[int]) -> str:
    return ", ".join(f":i{n}" for n in range(len(ids))) or "NULL"


def params(ids: Sequence[int]) -> dict[str, int]:
    return {f"i{n}": i for n, i in enumerate(ids)}


def configure_connection(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API object
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash (kill -9); only an OS crash may lose the
    # last transactions, which then are requests paid again, never money unaccounted.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def server_engine(url: str) -> Engine:
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


def without_secrets(error: Exception, engine: Engine) -> str:
    text_ = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    password = engine.url.password
    return text_.replace(str(password), "***") if password else text_


@cache
def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def alembic_config(connection: Connection):  # noqa: ANN202 - alembic's Config
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def revision(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
