"""A throwaway PostgreSQL cluster on a loopback port (Debian's postgresql package), for the
tests and bench/store.py."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresMissing(RuntimeError):
    pass


def binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise PostgresMissing("PostgreSQL is not installed (apt-get install postgresql; `make test` does it)")
    return found[-1].parent


@contextmanager
def throwaway_cluster(password: str = "pg-SECRET-9b1e", durable: bool = False) -> Iterator[str]:
    """Yields a postgresql:// URL (user barapi, that password) to a fresh cluster; stops and
    removes it afterwards. Tests run it without fsync; ``durable`` keeps PostgreSQL's default
    (what a benchmark of the store must measure)."""
    bin_dir = binaries()
    # Directly under /tmp: pytest's own folders are closed to the postgres user.
    root = Path(tempfile.mkdtemp(prefix="barapi-postgres-"))
    data = root / "data"
    (root / "pw").write_text(password)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its own system user runs it
        user = pwd.getpwnam("postgres")
        for path in (root, root / "pw"):
            shutil.chown(path, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "barapi", "--pwfile", str(root / "pw"),
                    "--auth-host", "scram-sha-256", "--auth-local", "trust"], check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -h 127.0.0.1 -k {root} -c fsync={'on' if durable else 'off'} -c max_connections=200", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://barapi:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new, empty database on the cluster at ``server_url``: its URL."""
    import uuid

    from sqlalchemy import create_engine

    name = f"t{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def store_engine(url: str | None, home: Path):  # noqa: ANN201 - an Engine
    """A plain engine on barapi's store at ``url`` (a server) or under ``home`` (its SQLite
    file), to write what barapi's own calls would not (an older schema's rows, a team's months)."""
    from sqlalchemy import create_engine

    return create_engine(url.replace("postgresql://", "postgresql+psycopg://") if url else f"sqlite:///{home / 'barapi.sqlite'}")


def prefill_ledger(url: str | None, home: Path, rows: int, unit_usd: float) -> None:
    """Pool 'team' on the store at ``url`` (a server) or under ``home`` (SQLite), its ledger
    already holding ``rows`` paid rows of ``unit_usd`` (a team's months); its running total, if
    the store keeps one, set the way a migration adopts an existing store."""
    from sqlalchemy import inspect, text

    engine = store_engine(url, home)
    series = ("SELECT g FROM generate_series(1, :n) AS g" if url else
              "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) SELECT g FROM s")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO pools (name, budget_usd, updated_at) VALUES ('team', 0, 0)"))
        connection.execute(text(f"INSERT INTO ledger (ts, run, provider, model, image_key, kind, cost_usd, pool) SELECT 0, 'earlier-' || (g % 500), "
                                f"'torchserve', 'efficientnet-lite0', 'old-' || g, 'paid', {unit_usd}, 'team' FROM ({series}) AS rows"), {"n": rows})
        if "drawn_usd" in {c["name"] for c in inspect(connection).get_columns("pools")}:
            connection.execute(text("UPDATE pools SET drawn_usd = (SELECT COALESCE(SUM(cost_usd), 0) FROM ledger WHERE pool = 'team')"))
    if url:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
