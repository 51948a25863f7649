"""The response cache and the ledger: every image sent is reserved, then paid, failed or
released; every answer is cached with its ledger rows in one transaction."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import Connection, insert, select, text

from barapi.errors import BudgetExceeded
from barapi.store.codec import decode_scores, encode_scores
from barapi.store.engine import booking, params, placeholders, reconnecting
from barapi.store.pools import OUTSIDE_OPEN_SLICES
from barapi.store.schema import PAID_KINDS, LabelSet, LedgerEntry, Response


class CacheAndLedger:
    """Store's responses and ledger (a mixin: the engine, sessions and write lock are Store's).
    The calls every query makes run Core statements on a plain connection: a session's unit of
    work costs more CPU than the statement on a busy team store."""

    # -- responses ---------------------------------------------------------------------------
    @reconnecting
    def cached(self, keys: Sequence[str]) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                query = select(Response.key, Response.label_set, Response.codec, Response.scores).where(Response.key.in_(chunk))
                for key, label_set, codec, scores in connection.execute(query):
                    found[key] = dict(zip(self._labels(connection, label_set), decode_scores(codec, scores).tolist()))
        return found

    def _labels(self, connection: Connection, label_set: int) -> list[str]:
        if label_set not in self._label_cache:
            self._label_cache[label_set] = json.loads(connection.execute(select(LabelSet.labels).where(LabelSet.id == label_set)).scalar_one())
        return self._label_cache[label_set]

    def _label_set_id(self, connection: Connection, names: list[str]) -> int:
        encoded = json.dumps(names)
        digest = hashlib.sha256(encoded.encode()).hexdigest()
        if digest not in self._label_ids:
            connection.execute(self._insert_new(LabelSet).values(digest=digest, labels=encoded))
            label_set = connection.execute(select(LabelSet.id).where(LabelSet.digest == digest)).scalar_one()
            self._label_ids[digest] = label_set
            self._label_cache[label_set] = names
        return self._label_ids[digest]

    # -- ledger ------------------------------------------------------------------------------
    @booking
    def record_hits(self, run: str, provider: str, model: str, keys: Iterable[str]) -> None:
        now = time.time()
        rows = [{"ts": now, "run": run, "provider": provider, "model": model, "image_key": k, "kind": "hit", "cost_usd": 0.0, "pool": None,
                 "slice": None} for k in keys]
        if rows:
            with self._write_lock, self.engine.begin() as connection:
                connection.execute(insert(LedgerEntry.__table__), rows)

    @booking
    def reserve(
        self, run: str, provider: str, model: str, keys: Sequence[str], unit_cost: float, pool: str | None = None, hold: str | None = None,
    ) -> list[int]:
        """Ledger rows for images about to be sent. With a pool, atomically against every other
        reservation on it, from any process or machine: nothing is reserved if the pool cannot
        cover them. On a pool, a run's images are booked on this process's slice of it
        (``slices``), which touches the pool's row only when the slice runs out. With ``hold``,
        the images are that hold's (a run ending measured): they are booked on the pool itself,
        under its row lock (a server's SELECT … FOR UPDATE; SQLite's one write lock), and may
        use what the hold keeps aside, which shrinks by what they cost."""
        now = time.time()
        rows = [{"ts": now, "run": run, "provider": provider, "model": model, "image_key": k, "kind": "reserved", "cost_usd": unit_cost,
                 "pool": pool, "slice": None} for k in keys]
        cost = len(rows) * unit_cost
        if pool is None:
            with self._write_lock, self.engine.begin() as connection:
                return self._insert_ledger(connection, rows)
        if hold is None:
            return self._reserve_on_slice(rows, pool, run, cost)
        return self.unless_dead_slices_free_it(pool, lambda: self._reserve_on_hold(rows, pool, hold, cost))

    def _reserve_on_hold(self, rows: list[dict], pool: str, hold: str, cost: float) -> list[int]:
        with self._write_lock, self.engine.begin() as connection:
            budget, drawn, held = self._locked_pool(connection, pool, excluding=hold)
            if drawn + cost + held > budget + 1e-9:
                raise BudgetExceeded(
                    f"pool {pool!r} cannot cover {len(rows)} more image(s): ${drawn:.4f} of ${budget:.2f} spent or taken by running "
                    f"workers and ${held:.4f} held for running runs to end measured; raise it with `barapi pool set {pool} --budget N`"
                )
            ids = self._insert_ledger(connection, rows)
            self._draw_from(connection, pool, cost)
            connection.execute(text("UPDATE pool_holds SET usd = CASE WHEN usd > :cost THEN usd - :cost ELSE 0 END WHERE holder = :holder"),
                               {"cost": cost, "holder": hold})
        return ids

    @staticmethod
    def _insert_ledger(connection: Connection, rows: list[dict]) -> list[int]:
        table = LedgerEntry.__table__
        return list(connection.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())

    @reconnecting
    def settle_paid(self, ids: Sequence[int], provider: str, model: str, answers: dict[str, dict[str, float]]) -> None:
        now = time.time()
        with self._write_lock, self.engine.begin() as connection, self._forget_labels_on_error():
            self._set_kind(connection, ids, "paid")
            rows = []
            for key, scores in answers.items():
                names = sorted(scores)
                encoding, values = encode_scores(np.asarray([scores[n] for n in names], dtype="<f8"))
                rows.append({"key": key, "provider": provider, "model": model, "label_set": self._label_set_id(connection, names),
                             "scores": values, "codec": encoding, "created_at": now})
            if rows:
                # Another worker on a shared store may have cached the same image meanwhile:
                # the first answer stays, nobody fails.
                connection.execute(self._insert_new(Response), rows)

    @contextlib.contextmanager
    def _forget_labels_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._label_ids.clear()  # an id flushed in a rolled-back transaction is not real
            raise

    @reconnecting
    def settle_failed(self, ids: Sequence[int], maybe_billed: bool) -> None:
        with self._write_lock, self.engine.begin() as connection:
            if maybe_billed:
                self._set_kind(connection, ids, "failed")
            else:
                self._give_back_outside_slices(connection, ids)
                connection.execute(text(f"UPDATE ledger SET kind = 'released', cost_usd = 0 WHERE id IN ({placeholders(ids)})"), params(ids))

    def _give_back_outside_slices(self, connection: Connection, ids: Sequence[int]) -> None:
        """Rows about to be released ($0) whose cost their pool's total counts one by one (booked
        outside a slice, or on one since closed) give it back; an open slice's rows need nothing
        (closing it counts what the ledger booked on it). Their slices are share-locked first, as
        a booking does, so that a slice closing meanwhile counts them either at cost or at $0."""
        if self.dialect != "sqlite":
            connection.execute(text(f"SELECT id FROM pool_slices WHERE id IN (SELECT slice FROM ledger WHERE id IN ({placeholders(ids)})) "
                                    "ORDER BY id FOR SHARE"), params(ids))
        else:
            # A write that changes nothing: SQLite's write lock, before anything is read.
            connection.execute(text(f"UPDATE ledger SET kind = kind WHERE id IN ({placeholders(ids)})"), params(ids))
        owed = connection.execute(text(f"SELECT pool, SUM(cost_usd) FROM ledger WHERE id IN ({placeholders(ids)}) AND pool IS NOT NULL "
                                       f"AND kind IN {PAID_KINDS} AND {OUTSIDE_OPEN_SLICES} GROUP BY pool ORDER BY pool"), params(ids)).all()
        for pool, usd in owed:
            self._draw_from(connection, pool, -float(usd))

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
