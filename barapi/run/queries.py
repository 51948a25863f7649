"""Where an image becomes a score: cache first, then the provider — with the budget reserved
and the ledger written around every attempt."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from barapi.classifier import Classifier, Scores
from barapi.errors import BudgetExceeded, ProviderError
from barapi.money import Budget, cost_usd
from barapi.store import PoolHold, Store, lease_holder, response_key


# A batch whose adapter ran out of retries on a transient failure is sent again (only the images
# still unanswered) this many times in all: at a 30 % fault rate and 6 attempts per request, one
# request in 1,400 exhausts a round, one in 2.6 billion three rounds.
SEND_ROUNDS = 3


@dataclass
class Ticket:
    ids: list[int]
    keys: list[str]


class LedgerMeter:
    """The Meter adapters call around each HTTP attempt: reserve → send → settle."""

    def __init__(self, store: Store, budget: Budget, run: str, classifier: Classifier, pool: str | None = None) -> None:
        self.store, self.budget, self.run, self.classifier, self.pool = store, budget, run, classifier, pool
        self.on_answered: Callable[[int], None] | None = None  # progress: called with each paid batch's size
        self.hold: PoolHold | None = None  # what this run keeps aside on its pool to end measured
        self.ending = False  # the images sent now end the run measured: they may use the hold

    def key(self, image: bytes) -> str:
        return response_key(self.classifier.name, self.classifier.cache_scope, image)

    def before_send(self, images: Sequence[bytes]) -> Ticket:
        self.budget.reserve(len(images))
        keys = [self.key(image) for image in images]
        unit = self.budget.per_1k / 1000.0
        try:
            ids = self.store.reserve(self.run, self.classifier.name, self.classifier.model_id, keys, unit, pool=self.pool, hold=self.drawing_on())
        except BudgetExceeded:
            self.budget.release(len(images))  # the pool refused: nothing was sent
            raise
        return Ticket(ids, keys)

    def drawing_on(self) -> str | None:
        """The hold these images may use: the run's, while it ends measured."""
        return self.hold.holder if self.hold is not None and self.ending else None

    def on_success(self, ticket: Ticket, results: Sequence[Scores]) -> None:
        self.store.settle_paid(ticket.ids, self.classifier.name, self.classifier.model_id, dict(zip(ticket.keys, results)))
        if self.on_answered is not None:
            self.on_answered(len(results))

    def on_failure(self, ticket: Ticket, maybe_billed: bool) -> None:
        self.store.settle_failed(ticket.ids, maybe_billed)
        if not maybe_billed:
            self.budget.release(len(ticket.ids))


class QueryEngine:
    def __init__(self, classifier: Classifier, store: Store, budget: Budget, run: str, pool: str | None = None) -> None:
        self.classifier, self.store, self.budget, self.run, self.pool = classifier, store, budget, run, pool
        self.meter = LedgerMeter(store, budget, run, classifier, pool)
        counts = store.ledger_counts(run)
        self.queries_cached = counts.get("hit", 0)

    def score(self, images: Sequence[bytes], *, all_or_nothing: bool = False, keep: int = 0) -> list[Scores]:
        """Answers for the images, from the cache where possible. With ``all_or_nothing``,
        nothing is sent unless every image still to pay for fits the budget (a training step
        or an evaluation is worth nothing half done), with ``keep`` queries to spare for what
        must follow it."""
        keys, answers = self._lookup(images)
        hit_keys = [k for k in keys if k in answers]
        if hit_keys:
            self.store.record_hits(self.run, self.classifier.name, self.classifier.model_id, hit_keys)
            self.queries_cached += len(hit_keys)
        pending: dict[str, bytes] = {}
        for key, image in zip(keys, images):
            if key not in answers:
                pending.setdefault(key, image)
        if pending and all_or_nothing and not self.fits(len(pending), keep):
            raise BudgetExceeded(f"{len(pending)} more image(s) do not fit the budget ({self.describe()})")
        for round_ in range(1, SEND_ROUNDS + 1):
            if not pending:
                break
            try:
                results = self.classifier.predict(list(pending.values()), meter=self.meter)
            except ProviderError as error:
                if not error.transient or round_ == SEND_ROUNDS:
                    raise
                # The adapter's retries ran out on some request; every answer that did arrive is
                # already paid and cached, so only the rest is sent again.
                arrived = self.store.cached(list(pending))
                answers |= {key: canonical(scores) for key, scores in arrived.items()}
                pending = {key: image for key, image in pending.items() if key not in arrived}
                continue
            answers |= {key: canonical(r) for key, r in zip(pending.keys(), results)}
            pending = {}
        return [answers[k] for k in keys]

    def cached(self, images: Sequence[bytes]) -> list[Scores] | None:
        """Answers already paid for, read from the cache without booking a query; None unless
        every image has one."""
        keys, answers = self._lookup(images)
        return [answers[k] for k in keys] if len(answers) == len(set(keys)) else None

    def _lookup(self, images: Sequence[bytes]) -> tuple[list[str], dict[str, Scores]]:
        """Each image's cache key, and the cached answers among them."""
        keys = [self.meter.key(image) for image in images]
        return keys, self.store.cached(list(dict.fromkeys(keys)))

    def fits(self, n: int, keep: int = 0) -> bool:
        """Whether n more paid images, with ``keep`` to spare after them, fit the run's budget and
        its pool's (what other runs on it have spent or hold so far: the pool's atomic check is at
        each reservation). On a pool, the run's own hold is what it keeps to spare."""
        if not self.budget.fits(n + keep):
            return False
        on_pool = n if self.meter.hold is not None else n + keep
        return self.pool is None or self.store.pool_left(self.pool, self.meter.drawing_on(), run=self.run) >= on_pool * self.budget.per_1k / 1000.0 - 1e-9

    @contextlib.contextmanager
    def ending(self) -> Iterator[None]:
        """The images sent inside end the run measured (label mapping, closing pass, test set):
        on a pool they may use what the run holds aside for that."""
        self.meter.ending = True
        try:
            yield
        finally:
            self.meter.ending = False

    @contextlib.contextmanager
    def holding(self, queries: int) -> Iterator[None]:
        """Keep what ``queries`` cost aside on the run's pool while inside (refused before any of
        them is sent if the pool cannot), and let them use it."""
        held_here = self.meter.hold is None
        if held_here:
            self.hold_for_ending(queries, holder=f"{self.run}@{lease_holder()}")
        try:
            with self.ending():
                yield
        finally:
            if held_here:
                self.let_go()

    def hold_for_ending(self, queries: int, holder: str | None = None) -> None:
        """A run on a pool keeps what it needs to end measured aside from here until ``let_go``
        (``holder``: the run's own hold by default, which a resumed run takes over)."""
        if self.pool is not None:
            self.meter.hold = PoolHold(self.store, self.pool, self.run, cost_usd(queries, self.budget.per_1k), holder or self.run)

    def let_go(self) -> None:
        """Give back what the run holds on its pool and what its slice of it did not use."""
        if self.meter.hold is not None:
            self.meter.hold.release()
            self.meter.hold = None
        if self.pool is not None:
            self.store.return_slices(self.run)

    def describe(self) -> str:
        pool = f"; pool {self.pool!r}: ${self.store.pool_left(self.pool, self.meter.drawing_on(), run=self.run):.4f} left" if self.pool else ""
        return self.budget.describe() + pool


def canonical(scores: Scores) -> Scores:
    """The form the cache returns (labels sorted, float64), so that a fresh answer and the same
    answer read back after a resume give bit-identical losses."""
    return {label: float(scores[label]) for label in sorted(scores)}
