"""Who drives a run, and what a run on a pool keeps aside: held while this process lives,
renewed by a daemon thread, given back when it stops or expired when it dies."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError

from barapi.errors import StoreError


class LeaseBook(Protocol):
    """What a lease and a hold need of the store (``barapi.store.Store`` is one)."""

    def acquire_lease(self, run: str, holder: str, ttl_s: float) -> str | None: ...
    def renew_lease(self, run: str, holder: str, ttl_s: float) -> bool: ...
    def release_lease(self, run: str, holder: str) -> None: ...
    def hold(self, pool: str, run: str, holder: str, usd: float, ttl_s: float) -> None: ...
    def renew_hold(self, holder: str, ttl_s: float) -> bool: ...
    def release_hold(self, holder: str) -> None: ...


# A run's lease lasts this long past its holder's last renewal (every quarter of it).
LEASE_TTL_S = 60.0


def lease_holder() -> str:
    """This process, as a lease names it: machine, process id and a nonce (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_alive(holder: str) -> bool:
    """False for a holder known not to be driving anymore: a process of this machine that is
    gone, or this very process (its earlier Trainer: one process drives a run at a time). A
    holder on another machine is alive until its lease expires."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """This process's hold on a run while it drives it: taken at once (or refused while another
    live process holds it), renewed every ``ttl_s / 4`` by a daemon thread, released when the
    run stops. A holder killed on this machine is seen dead at once; one on another machine
    after ``ttl_s`` without renewal."""

    def __init__(self, store: LeaseBook, run: str, ttl_s: float = LEASE_TTL_S) -> None:
        self.store, self.run, self.ttl_s = store, run, ttl_s
        self.holder = lease_holder()
        other = store.acquire_lease(run, self.holder, ttl_s)
        if other is not None:
            raise StoreError(
                f"run {run!r} is being driven by another process ({other}): two cannot drive one run; if that process died "
                f"on another machine, its lease expires {ttl_s:.0f} s after its last renewal and `barapi resume {run}` takes over"
            )
        self.lost = False
        self._stop = renewing(lambda: store.renew_lease(run, self.holder, ttl_s), ttl_s, self._lose, f"lease-{run}")

    def _lose(self) -> None:
        self.lost = True

    def check(self) -> None:
        """Stop driving a run another process has taken over (this one was thought dead)."""
        if self.lost:
            raise StoreError(f"run {self.run!r} was taken over by another process: this one stops")

    def release(self) -> None:
        self._stop.set()
        self.store.release_lease(self.run, self.holder)


def renewing(renew: Callable[[], bool], ttl_s: float, on_lost: Callable[[], None], name: str) -> threading.Event:
    """Call ``renew`` every ``ttl_s / 4`` in a daemon thread until the returned event is set;
    ``on_lost`` once it returns False (what it renewed expired and was taken)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(ttl_s / 4):
            try:
                if not renew():
                    on_lost()
                    return
            except (OperationalError, DBAPIError):
                continue  # the server is unreachable for now: the next renewal tries again

    threading.Thread(target=loop, name=name, daemon=True).start()
    return stop


class PoolHold:
    """What a run (or an evaluation) on a pool keeps aside to end measured: booked before its
    first query or refused, renewed while this process lives, drawn on by the images that end it
    (``Store.reserve(hold=…)``), released when it stops. A holder killed and never resumed stops
    renewing: its hold expires ``ttl_s`` later and the next process that looks sees it gone."""

    def __init__(self, store: LeaseBook, pool: str, run: str, usd: float, holder: str, ttl_s: float = LEASE_TTL_S) -> None:
        """``holder``: the run's name for the run itself (a resumed run replaces the hold its
        killed process left), something unique for anything else."""
        self.store, self.holder = store, holder
        store.hold(pool, run, self.holder, usd, ttl_s)
        self._stop = renewing(lambda: store.renew_hold(self.holder, ttl_s), ttl_s, lambda: None, f"hold-{run}")

    def release(self) -> None:
        self._stop.set()
        self.store.release_hold(self.holder)
