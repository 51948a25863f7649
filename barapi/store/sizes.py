"""What a store holds and how much room it takes, and trimming cached answers nobody needs: the
ledger's money figures are never touched."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from barapi.store.engine import reconnecting
from barapi.store.schema import PAID_KINDS

TABLES = ("responses", "label_sets", "ledger", "pools", "pool_holds", "pool_slices", "leases", "runs", "checkpoints", "metrics")
# The answers each run's ledger names (a run's images, paid or read from the cache), once each.
RUN_ANSWERS = "(SELECT DISTINCT run, image_key FROM ledger)"


class Sizes:
    """Store's size report and cache trimming (a mixin)."""

    @reconnecting
    def store_stats(self) -> dict:
        """Rows and bytes by table (bytes on disk, indexes included), and the cached answers by
        run and by provider/model (their score bytes as stored)."""
        with self.session() as session:
            rows = {t: int(session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()) for t in TABLES}
            on_disk = self._table_bytes(session)
            by_run = session.execute(text(
                f"SELECT a.run, COUNT(*), COALESCE(SUM(LENGTH(r.scores)), 0) FROM {RUN_ANSWERS} a JOIN responses r ON r.key = a.image_key "
                "GROUP BY a.run ORDER BY a.run")).all()
            ledger = dict((run, (int(n), float(usd))) for run, n, usd in session.execute(text(
                f"SELECT run, COUNT(*), COALESCE(SUM(CASE WHEN kind IN {PAID_KINDS} THEN cost_usd ELSE 0 END), 0) FROM ledger GROUP BY run")).all())
            by_model = session.execute(text(
                "SELECT provider, model, COUNT(*), COALESCE(SUM(LENGTH(scores)), 0) FROM responses GROUP BY provider, model ORDER BY provider, model")).all()
        runs = sorted(set(ledger) | {run for run, _, _ in by_run})
        answers = {run: (int(n), int(b)) for run, n, b in by_run}
        return {
            "where": self.where, "backend": self.dialect,
            "tables": [{"table": t, "rows": rows[t], "bytes": on_disk.get(t)} for t in TABLES],
            "total_bytes": sum(on_disk.values()) if on_disk else None,
            "runs": [{"run": run, "ledger_rows": ledger.get(run, (0, 0.0))[0], "spent_usd": round(ledger.get(run, (0, 0.0))[1], 6),
                      "cached_answers": answers.get(run, (0, 0))[0], "cached_bytes": answers.get(run, (0, 0))[1]} for run in runs],
            "models": [{"provider": p, "model": m, "cached_answers": int(n), "cached_bytes": int(b)} for p, m, n, b in by_model],
        }

    def _table_bytes(self, session) -> dict[str, int]:  # noqa: ANN001 - a Session
        """Bytes each table takes with its indexes: PostgreSQL's relation sizes; SQLite's dbstat
        (empty where the SQLite build lacks it)."""
        if self.dialect != "sqlite":
            return {t: int(session.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar()) for t in TABLES}
        try:
            found = session.execute(text("SELECT s.tbl_name, SUM(d.pgsize) FROM dbstat d JOIN sqlite_schema s ON s.name = d.name GROUP BY s.tbl_name")).all()
        except OperationalError:
            return {}
        sizes = {t: int(b) for t, b in found}
        return {t: sizes.get(t, 0) for t in TABLES}

    @reconnecting
    def trim_answers(self, runs: Sequence[str] = (), older_than_s: float | None = None, dry_run: bool = False) -> dict:
        """Remove cached answers: those of the named runs' images (an answer another run's
        ledger also names is kept: that run still reads it), and/or those cached more than
        ``older_than_s`` ago. The ledger is not touched: what was paid stays paid. Says, for
        every run whose answers go, how many its resume could have to pay for again, and at
        what price (its own price per image)."""
        if not runs and older_than_s is None:
            raise ValueError("name the runs to trim, an age, or both")
        where, values = ["1 = 1"], {}
        if runs:
            names = {f"r{i}": run for i, run in enumerate(runs)}
            listed = ", ".join(f":{key}" for key in names)
            where.append(f"key IN (SELECT image_key FROM ledger WHERE run IN ({listed}))")
            where.append(f"key NOT IN (SELECT image_key FROM ledger WHERE run NOT IN ({listed}))")
            values |= names
        if older_than_s is not None:
            where.append("created_at < :before")
            values["before"] = time.time() - older_than_s
        chosen = f"SELECT key FROM responses WHERE {' AND '.join(where)}"
        with self._write_lock, self.session() as session:
            count, payload = session.execute(text(f"SELECT COUNT(*), COALESCE(SUM(LENGTH(scores)), 0) FROM responses WHERE key IN ({chosen})"),
                                             values).one()
            kept = 0
            if runs:
                kept = int(session.execute(text(
                    f"SELECT COUNT(*) FROM responses WHERE key IN (SELECT image_key FROM ledger WHERE run IN ({listed})) "
                    f"AND key IN (SELECT image_key FROM ledger WHERE run NOT IN ({listed}))"), values).scalar())
            again = session.execute(text(
                f"SELECT a.run, COUNT(*), (SELECT MAX(cost_usd) FROM ledger p WHERE p.run = a.run AND p.kind = 'paid') "
                f"FROM {RUN_ANSWERS} a WHERE a.image_key IN ({chosen}) GROUP BY a.run ORDER BY a.run"), values).all()
            if not dry_run:
                session.execute(text(f"DELETE FROM responses WHERE key IN ({chosen})"), values)
                session.commit()
        return {
            "answers": int(count), "score_bytes": int(payload), "kept_shared": kept, "dry_run": dry_run,
            "resume_would_pay_again": [{"run": run, "queries": int(n), "usd": round(int(n) * float(unit or 0.0), 6)} for run, n, unit in again],
        }
