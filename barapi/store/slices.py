"""Budget drawn from a pool in slices: a worker takes some dollars of the pool at once (counted
as given out for everyone else), books its requests against them on its own, and touches the
pool's row only to take the next slice, which its own thread takes ahead of need; what a slice
did not use goes back when it is spent, when the run ends, when its holder is seen dead, or once
its holder stopped renewing it.

Never overspent: a slice is granted under the pool's row lock out of what the pool has not given
out; a booking on it is written only while the slice row still exists (on a server, with the
slice row share-locked, so that closing a slice waits for it and counts it), and closing a slice
gives back its grant less the cost of the rows the ledger booked on it. Locks are always taken
slice first, pool second, so that no two of these transactions wait on each other.

On PostgreSQL a booking and a draw are each one round trip in autocommit (the draw a function of
the store's that reads the pool's holds after it locked its row): the pool's row is locked only
while the server runs the draw, never across a round trip to a worker that may be waiting for a
CPU."""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import NoReturn

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from barapi.errors import BarapiError, BudgetExceeded
from barapi.store.leases import LEASE_TTL_S, holder_alive, lease_holder
from barapi.store.schema import PAID_KINDS

# A worker's first slice covers this many requests like the one that asked for it; each further
# slice twice as many as the last, up to SLICE_MAX_REQUESTS. No slice takes more than
# SLICE_SHARE of what the pool has free, so that a pool near its end is shared among its workers.
SLICE_FIRST_REQUESTS, SLICE_MAX_REQUESTS, SLICE_SHARE = 8, 512, 0.125
# Once the slice in use has less than this share of its grant left, the next one is drawn ahead.
DRAW_AHEAD_BELOW = 0.5

# This process's slice holders whose slices are live (a holder of this process is otherwise
# taken for an earlier, finished one: see ``holder_alive``).
_LIVE_HOLDERS: set[str] = set()
_STORES_WITH_SLICES: weakref.WeakSet = weakref.WeakSet()

# The draw on a server: one round trip to a function of the store's (migration 0007), which locks
# the pool's row before it reads the pool's holds.
DRAW_ON_SERVER = "SELECT slice_id, granted FROM barapi_draw_slice(:pool, :run, :holder, :need, :wanted, :share, :floor, :now, :until)"
BOOK_ON_SERVER = (
    "INSERT INTO ledger (ts, run, provider, model, image_key, kind, cost_usd, pool, slice) "
    "SELECT :ts, :run, :provider, :model, k.key, 'reserved', :cost, :pool, s.id "
    "FROM (SELECT id FROM pool_slices WHERE id = :slice AND holder = :holder FOR SHARE) AS s "
    "CROSS JOIN unnest(CAST(:keys AS text[])) WITH ORDINALITY AS k(key, n) ORDER BY k.n RETURNING id"
)


@dataclass
class LocalSlice:
    id: int
    granted: float
    used: float = 0.0

    @property
    def unused(self) -> float:
        return max(self.granted - self.used, 0.0)


@dataclass
class Drawing:
    """One run's slices of one pool in this process: the one in use, the next (drawn ahead by
    its thread), and spent ones its thread closes."""

    pool: str
    run: str
    request_usd: float  # the cost of the request that opened it: the unit slices are sized in
    current: LocalSlice | None = None
    spare: LocalSlice | None = None
    spent: list[LocalSlice] = field(default_factory=list)
    slices: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)

    def next_size(self) -> float:
        return self.request_usd * min(SLICE_FIRST_REQUESTS * 2**self.slices, SLICE_MAX_REQUESTS)

    def open(self) -> list[LocalSlice]:
        return [s for s in (self.current, self.spare) if s is not None]


def slice_holder_alive(holder: str) -> bool:
    return holder in _LIVE_HOLDERS or holder_alive(holder)


class Slices:
    """Store's pool slices (a mixin: sessions, the write lock and the pool's row are Store's)."""

    slice_ttl_s = LEASE_TTL_S

    def _init_slices(self) -> None:
        self._drawings: dict[tuple[str, str], Drawing] = {}
        self._slice_lock = threading.RLock()  # this process's bookkeeping of its slices
        self._slice_holder = lease_holder()

    def slice_unused(self, pool: str, run: str | None) -> float:
        """What this process's slices of ``pool`` for ``run`` have not used yet."""
        drawing = self._drawings.get((pool, run)) if run is not None else None
        return sum(s.unused for s in drawing.open()) if drawing is not None else 0.0

    @staticmethod
    def _slices_unused(connection: Connection, pool: str) -> float:
        """What the pool's open slices have not used yet (the ledger's rows booked on them)."""
        return float(connection.execute(text(
            f"SELECT COALESCE(SUM(granted_usd), 0) - COALESCE((SELECT SUM(cost_usd) FROM ledger WHERE kind IN {PAID_KINDS} AND slice IN "
            "(SELECT id FROM pool_slices WHERE pool = :pool)), 0) FROM pool_slices WHERE pool = :pool"), {"pool": pool}).scalar())

    # -- booking -----------------------------------------------------------------------------
    def _reserve_on_slice(self, rows: list[dict], pool: str, run: str, cost: float) -> list[int]:
        """Book ``rows`` (``cost`` in all) on this process's slice of the pool, moving to the
        next slice (drawn ahead, or drawn now) when it cannot cover them; BudgetExceeded, with
        nothing booked, if the pool cannot."""
        with self._slice_lock:
            drawing = self._drawings.get((pool, run)) or self._start_drawing(pool, run, cost)
            for _ in range(3):
                piece = drawing.current
                if piece is None or piece.used + cost > piece.granted + 1e-12:
                    piece = drawing.current = self._next_slice(drawing, cost)
                ids = self._book(rows, piece)
                if ids is not None:
                    piece.used += cost
                    if drawing.spare is None and piece.unused < DRAW_AHEAD_BELOW * piece.granted:
                        drawing.wake.set()
                    return ids
                drawing.current = None  # closed under us (its holder was taken for dead): never booked on again
            raise BudgetExceeded(f"pool {pool!r}: this worker's slices kept being closed under it; nothing was sent")

    def _next_slice(self, drawing: Drawing, cost: float) -> LocalSlice:
        """The slice to book on once the current one cannot cover ``cost``: the spare, or one drawn
        now (after giving back what the spent ones left, if the pool is short)."""
        if drawing.current is not None:
            drawing.spent.append(drawing.current)
            drawing.current = None
            drawing.wake.set()
        spare, drawing.spare = drawing.spare, None
        if spare is not None and spare.granted >= cost:
            return spare
        if spare is not None:
            drawing.spent.append(spare)
        try:
            return self._draw(drawing, need=cost)
        except BudgetExceeded:
            self._close_spent(drawing)
            self.close_dead_slices(drawing.pool)
            return self._draw(drawing, need=cost)

    def _book(self, rows: list[dict], piece: LocalSlice) -> list[int] | None:
        """The rows' ids, booked on ``piece``; None, with nothing booked, if the slice is closed."""
        if self.dialect == "postgresql":
            with self._autocommit.connect() as connection:
                first = rows[0]
                ids = list(connection.execute(text(BOOK_ON_SERVER), {
                    "ts": first["ts"], "run": first["run"], "provider": first["provider"], "model": first["model"], "cost": first["cost_usd"],
                    "pool": first["pool"], "slice": piece.id, "holder": self._slice_holder, "keys": [r["image_key"] for r in rows],
                }).scalars())
            return ids or None
        for row in rows:
            row["slice"] = piece.id
        with self._write_lock, self.engine.connect() as connection:
            ids = self._insert_ledger(connection, rows)  # the write lock first
            if connection.execute(text("SELECT id FROM pool_slices WHERE id = :id AND holder = :holder"),
                                  {"id": piece.id, "holder": self._slice_holder}).first() is None:
                connection.rollback()
                return None
            connection.commit()
            return ids

    # -- drawing from the pool ---------------------------------------------------------------
    def _start_drawing(self, pool: str, run: str, cost: float) -> Drawing:
        drawing = self._drawings[(pool, run)] = Drawing(pool, run, cost)
        _LIVE_HOLDERS.add(self._slice_holder)
        _STORES_WITH_SLICES.add(self)
        threading.Thread(target=self._tend, args=(drawing,), name=f"slices-{run}", daemon=True).start()
        return drawing

    def _draw(self, drawing: Drawing, need: float, ahead: bool = False) -> LocalSlice | None:
        """A new slice of at least ``need`` (more, up to the next slice's size and a share of what
        is free), or BudgetExceeded if the pool has not that much free. Drawn ``ahead`` of need,
        a slice takes no more than its share of what is free, or nothing (None)."""
        pool = drawing.pool
        values = {"pool": pool, "run": drawing.run, "holder": self._slice_holder, "need": need, "wanted": drawing.next_size(),
                  "share": SLICE_SHARE, "floor": need if ahead else 0.0, "now": time.time(), "until": time.time() + self.slice_ttl_s}
        if self.dialect == "postgresql":
            with self._autocommit.connect() as connection:
                row = connection.execute(text(DRAW_ON_SERVER), values).first()
        else:
            with self._write_lock, self.engine.begin() as connection:
                budget, drawn, held = self._locked_pool(connection, pool)
                free = budget - drawn - held
                row = None
                if free + 1e-9 >= need and min(values["wanted"], free * SLICE_SHARE) + 1e-9 >= values["floor"]:
                    amount = max(need, min(values["wanted"], free * SLICE_SHARE))
                    self._draw_from(connection, pool, amount)
                    row = connection.execute(text("INSERT INTO pool_slices (pool, run, holder, granted_usd, expires_at) "
                                                  "VALUES (:pool, :run, :holder, :amount, :until) RETURNING id, granted_usd"),
                                             values | {"amount": amount}).first()
        if row is None:
            return None if ahead else self._refuse(pool, need)
        drawing.slices += 1
        return LocalSlice(id=int(row[0]), granted=float(row[1]))

    def _refuse(self, pool: str, need: float) -> NoReturn:
        with self.session() as session:
            budget, drawn = (float(v) for v in session.execute(text("SELECT budget_usd, drawn_usd FROM pools WHERE name = :p"), {"p": pool}).one_or_none()
                             or self._no_pool(pool))
            held = self._pool_held(session, pool)
        raise BudgetExceeded(
            f"pool {pool!r} cannot cover ${need:.4f} more: ${max(budget - drawn - held, 0.0):.4f} free of ${budget:.2f} (${drawn:.4f} spent "
            f"or taken by running workers, ${held:.4f} held for running runs to end measured); raise it with `barapi pool set {pool} --budget N`"
        )

    def _tend(self, drawing: Drawing) -> None:
        """The thread of one run's slices while it draws on the pool: close its spent slices,
        draw the next one ahead of need, renew its open ones every quarter of their lifetime
        (and close the pool's slices whose workers are gone)."""
        renew_at = time.monotonic() + self.slice_ttl_s / 4
        while not drawing.stop.is_set():
            drawing.wake.wait(timeout=max(renew_at - time.monotonic(), 0.0))
            drawing.wake.clear()
            if drawing.stop.is_set():
                return
            try:
                self._close_spent(drawing)
                current = drawing.current
                if drawing.spare is None and current is not None and current.unused < DRAW_AHEAD_BELOW * current.granted:
                    # None when the pool is short: a booking that needs more draws what it needs, or is refused.
                    spare = self._draw(drawing, need=drawing.request_usd, ahead=True)
                    with self._slice_lock:
                        kept = not drawing.stop.is_set() and drawing.spare is None
                        if kept:
                            drawing.spare = spare
                    if spare is not None and not kept:
                        self._close_slice(drawing.pool, spare.id)
                if time.monotonic() >= renew_at:
                    self._renew_slices([s.id for s in drawing.open()])
                    self.close_dead_slices(drawing.pool)
                    renew_at = time.monotonic() + self.slice_ttl_s / 4
            except (OperationalError, DBAPIError, BarapiError):
                continue  # the server is unreachable for now, or the pool is gone: the next turn tries again

    def _renew_slices(self, ids: list[int]) -> None:
        if ids:
            with self._write_lock, self.engine.begin() as connection:
                connection.execute(text(f"UPDATE pool_slices SET expires_at = :until WHERE id IN ({', '.join(map(str, ids))})"),
                                   {"until": time.time() + self.slice_ttl_s})

    # -- closing -----------------------------------------------------------------------------
    def _close_spent(self, drawing: Drawing) -> None:
        with self._slice_lock:
            spent, drawing.spent = drawing.spent, []
        for piece in spent:
            self._close_slice(drawing.pool, piece.id)

    def close_dead_slices(self, pool: str) -> None:
        """Close the pool's slices whose holder stopped renewing them or is seen dead: what they
        did not use goes back (a read when there are none)."""
        with self.engine.connect() as connection:
            rows = connection.execute(text("SELECT id, holder, expires_at FROM pool_slices WHERE pool = :pool"), {"pool": pool}).all()
        now = time.time()
        for slice_id, holder, until in rows:
            if until < now or not slice_holder_alive(holder):
                self._close_slice(pool, slice_id)

    def _close_slice(self, pool: str, slice_id: int) -> None:
        """Close one slice: its grant less what the ledger booked on it goes back to the pool. The
        slice row goes first (on a server, once a booking in flight on it has committed), then
        the ledger is read afresh, so every row booked on it is counted."""
        with self._write_lock, self.engine.begin() as connection:
            row = connection.execute(text("DELETE FROM pool_slices WHERE id = :id RETURNING granted_usd"), {"id": slice_id}).first()
            if row is not None:
                used = connection.execute(text(f"SELECT COALESCE(SUM(cost_usd), 0) FROM ledger WHERE slice = :id AND kind IN {PAID_KINDS}"),
                                          {"id": slice_id}).scalar()
                self._draw_from(connection, pool, -max(float(row[0]) - float(used), 0.0))

    def return_slices(self, run: str | None = None) -> None:
        """Give back what this process's slices (of ``run``, or all) did not use."""
        with self._slice_lock:
            drawings = [d for d in self._drawings.values() if run is None or d.run == run]
            for drawing in drawings:
                drawing.stop.set()
                drawing.wake.set()
                del self._drawings[(drawing.pool, drawing.run)]
                drawing.spent.extend(drawing.open())
                drawing.current = drawing.spare = None
            if not self._drawings:
                _LIVE_HOLDERS.discard(self._slice_holder)
        for drawing in drawings:
            self._close_spent(drawing)


@atexit.register
def _return_all_slices() -> None:
    for store in list(_STORES_WITH_SLICES):
        try:
            store.return_slices()
        except Exception:  # noqa: BLE001 - at exit, a slice left open is closed by the next worker that looks
            pass
