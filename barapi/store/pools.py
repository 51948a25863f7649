"""Named budget pools shared by every run on a store, and the holds that let runs on them end
measured.

A pool keeps what it has given out as a running total (``Pool.drawn_usd``), changed in the
transaction that books or returns the money, so that checking a reservation reads one row
whatever the pool's history: the ledger's rows on the pool outside an open slice, at their
cost, plus each open slice's grant (``slices``). ``pool_verify`` recomputes it from the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

from sqlalchemy import text
from sqlmodel import Session

from barapi.errors import BudgetExceeded, StoreError
from barapi.store.engine import reconnecting
from barapi.store.schema import PAID_KINDS, Pool, PoolHoldRow

T = TypeVar("T")
# Rows booked on a pool whose money the pool's total still counts one by one: outside any open
# slice (an open slice is counted whole, by its grant).
OUTSIDE_OPEN_SLICES = "(slice IS NULL OR slice NOT IN (SELECT id FROM pool_slices))"
# What the pool's live holds keep aside (a hold whose holder stopped renewing it has expired),
# but the hold :excluding ('' for none).
LIVE_HOLDS = "(SELECT COALESCE(SUM(usd), 0) FROM pool_holds WHERE pool = :pool AND expires_at >= :now AND holder != :excluding)"


class Pools:
    """Store's pools and holds (a mixin)."""

    # -- pools -------------------------------------------------------------------------------
    @reconnecting
    def set_pool(self, name: str, budget_usd: float) -> None:
        """Create the pool, or change its limit (what it has given out stays)."""
        with self._write_lock, self.session() as session:
            session.execute(self._insert_new(Pool).values(name=name, budget_usd=budget_usd, updated_at=time.time(), drawn_usd=0.0))
            session.execute(text("UPDATE pools SET budget_usd = :budget, updated_at = :now WHERE name = :name"),
                            {"budget": budget_usd, "now": time.time(), "name": name})
            session.commit()

    @reconnecting
    def pool_left(self, name: str, excluding: str | None = None, run: str | None = None) -> float:
        """Dollars the pool can still pay for: what it has not given out (to spenders or to
        slices) nor holds aside for runs to end measured (but the hold ``excluding``, whose
        images may use it), plus what the slice this process took for ``run`` has not used."""
        self.close_dead_slices(name)
        with self.session() as session:
            pool = self._pool(session, name)
            left = pool.budget_usd - pool.drawn_usd - self._pool_held(session, name, excluding)
        return left + self.slice_unused(name, run)

    @reconnecting
    def hold(self, pool: str, run: str, holder: str, usd: float, ttl_s: float) -> None:
        """Keep ``usd`` of the pool aside for ``holder`` (a run's ending), atomically like a
        reservation; refused, with what the pool has and what the run needs, if it cannot."""
        self.unless_dead_slices_free_it(pool, lambda: self._hold(pool, run, holder, usd, ttl_s))

    def _hold(self, pool: str, run: str, holder: str, usd: float, ttl_s: float) -> None:
        now = time.time()
        with self._write_lock, self.session() as session:
            session.execute(text("DELETE FROM pool_holds WHERE holder = :holder"), {"holder": holder})
            session.add(PoolHoldRow(holder=holder, pool=pool, run=run, usd=usd, expires_at=now + ttl_s))
            session.flush()  # SQLite: the write lock, before anything is read
            budget, drawn, held = self._locked_pool(session, pool, excluding=holder)
            if drawn + held + usd > budget + 1e-9:
                session.rollback()
                raise BudgetExceeded(
                    f"pool {pool!r} has ${max(budget - drawn - held, 0.0):.4f} left (of ${budget:.2f}: ${drawn:.4f} spent or taken by "
                    f"running workers, ${held:.4f} held for running runs to end measured) and run {run!r} needs ${usd:.4f} to end "
                    f"measured; nothing was sent. Raise the pool with `barapi pool set {pool} --budget N`, or wait for the runs on it to end"
                )
            session.commit()

    def unless_dead_slices_free_it(self, pool: str, attempt: Callable[[], T]) -> T:
        """``attempt``; if the pool refuses it, once more after closing the slices of workers that
        are gone (in transactions of their own: a slice is locked before its pool, never after)."""
        try:
            return attempt()
        except BudgetExceeded:
            self.close_dead_slices(pool)
            return attempt()

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
        """The pool's limit and spend, in all and by run (from the ledger), what running runs
        hold aside, and what running workers took in slices and have not used yet."""
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
            unused = self._slices_unused(session, name)
        runs = [{"run": run, "queries_paid": int(n), "spent_usd": round(float(cost), 6)} for run, n, cost in rows]
        reserves = [{"run": run, "held_usd": round(float(usd), 6)} for run, usd in holds]
        return {
            "pool": name, "budget_usd": budget, "spent_usd": round(sum(r["spent_usd"] for r in runs), 6),
            "queries_paid": sum(r["queries_paid"] for r in runs), "runs": runs,
            "held_usd": round(sum(r["held_usd"] for r in reserves), 6), "reserves": reserves, "in_slices_usd": round(unused, 6),
        }

    @reconnecting
    def pool_verify(self, name: str) -> dict:
        """The pool's running total against the same figure recomputed from the ledger (its rows
        on the pool outside an open slice, plus each open slice's grant), read in one statement."""
        with self.session() as session:
            drawn, booked, sliced = session.execute(text(
                f"SELECT drawn_usd, (SELECT COALESCE(SUM(cost_usd), 0) FROM ledger WHERE pool = :pool AND kind IN {PAID_KINDS} "
                f"AND {OUTSIDE_OPEN_SLICES}), (SELECT COALESCE(SUM(granted_usd), 0) FROM pool_slices WHERE pool = :pool) "
                "FROM pools WHERE name = :pool"), {"pool": name}).one_or_none() or self._no_pool(name)
        recomputed = float(booked) + float(sliced)
        return {"pool": name, "drawn_usd": round(float(drawn), 9), "recomputed_usd": round(recomputed, 9),
                "difference_usd": round(float(drawn) - recomputed, 9), "ok": abs(float(drawn) - recomputed) <= 1e-6}

    def _pool(self, session: Session, name: str) -> Pool:
        return session.get(Pool, name) or self._no_pool(name)

    def _no_pool(self, name: str) -> NoReturn:
        raise StoreError(f"no pool named {name!r} in {self.where}: create it with `barapi pool set {name} --budget N`")

    def _locked_pool(self, session: Session, name: str, excluding: str | None = None) -> tuple[float, float, float]:
        """The pool's budget, what it has given out and what its live holds keep aside (but the
        hold ``excluding``), read once its row is locked until the transaction ends: on SQLite a
        write takes the one write lock; on a server SELECT … FOR UPDATE, and the figures in a
        statement of its own after it (one statement would read the holds as they were before it
        waited for the lock, missing any committed meanwhile)."""
        lock = "UPDATE pools SET drawn_usd = drawn_usd WHERE name = :pool" if self.dialect == "sqlite" else "SELECT 1 FROM pools WHERE name = :pool FOR UPDATE"
        session.execute(text(lock), {"pool": name})
        row = session.execute(text(f"SELECT budget_usd, drawn_usd, {LIVE_HOLDS} FROM pools WHERE name = :pool"),
                              {"pool": name, "now": time.time(), "excluding": excluding or ""}).one_or_none() or self._no_pool(name)
        return float(row[0]), float(row[1]), float(row[2])

    @staticmethod
    def _draw_from(session: Session, name: str, usd: float) -> None:
        """Add ``usd`` to what the pool has given out (negative: given back); its row is locked."""
        session.execute(text("UPDATE pools SET drawn_usd = drawn_usd + :usd WHERE name = :name"), {"usd": usd, "name": name})

    @staticmethod
    def _pool_held(session: Session, name: str, excluding: str | None = None) -> float:
        """What live holds keep aside (but the hold ``excluding``)."""
        return float(session.execute(text(f"SELECT {LIVE_HOLDS}"), {"pool": name, "now": time.time(), "excluding": excluding or ""}).scalar())
