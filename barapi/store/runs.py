"""Runs: their records, leases, checkpoints and metrics."""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlmodel import select

from barapi.errors import StoreError
from barapi.store.engine import reconnecting
from barapi.store.leases import holder_alive
from barapi.store.schema import Checkpoint, LeaseRow, MetricRow, RunRecord


class Runs:
    """Store's runs, leases, checkpoints and metrics (a mixin)."""

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
