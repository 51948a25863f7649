"""Named budget pools shared by every run on a store, and the holds that let runs on them end
measured."""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlmodel import Session

from barapi.errors import BudgetExceeded, StoreError
from barapi.store.engine import reconnecting
from barapi.store.schema import PAID_KINDS, Pool, PoolHoldRow


class Pools:
    """Store's pools and holds (a mixin)."""

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
