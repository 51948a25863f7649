"""The response cache and the ledger: every image sent is reserved, then paid, failed or
released; every answer is cached with its ledger rows in one transaction."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import text
from sqlmodel import Session, select

from barapi.errors import BudgetExceeded
from barapi.store.engine import booking, params, placeholders, reconnecting
from barapi.store.schema import PAID_KINDS, LabelSet, LedgerEntry, Response


class CacheAndLedger:
    """Store's responses and ledger (a mixin: the engine, sessions and write lock are Store's)."""

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
                session.execute(text(f"UPDATE ledger SET kind = 'released', cost_usd = 0 WHERE id IN ({placeholders(ids)})"), params(ids))
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
