"""All persistent state in one database: the response cache, the ledger, pools, runs, checkpoints
and metric history. By default a SQLite file under BARAPI_HOME; with BARAPI_STORE set to a
``postgresql://`` URL, a PostgreSQL server that several processes and machines share.

Contracts:
- responses: keyed by a hash of (provider, cache scope, sha256 of the exact image bytes); the API
  key is never part of anything stored. Scores are stored compactly (``codec``: float32 where
  that holds them exactly, byte planes deflated) and read back bit for bit. Nothing is evicted
  on its own; ``trim_answers`` removes what a user says (by run, by age), never a ledger row.
- ledger: one row per image per attempt (and one per cache hit, at $0), append-only except
  that a 'reserved' row becomes 'paid', 'failed' (may have been billed: counted) or 'released'
  (refused before any work, e.g. throttled: $0) when its attempt ends; rows still 'reserved'
  after a crash become 'lost' (they may have been billed, so they stay counted).
- a paid response and its ledger rows are written in one transaction.
- pools: a pool's row keeps what it has given out as a running total (``drawn_usd``), changed in
  the transactions that book or return money, so that no reservation sums the ledger;
  ``pool_verify`` recomputes it from the ledger. Workers book on slices of the pool drawn ahead
  (``slices``), counted as given out until what they did not use goes back.
- checkpoints: the latest state of each run, replaced atomically with its metrics row.
- schema changes are ordered, named Alembic migrations (``migrations/``) that run on both
  backends, so an older database still opens; SQLite files from before Alembic (versioned by
  PRAGMA user_version) are adopted at their version.
- the URL's password never appears in output, errors or stored rows.

Modules: ``schema`` (the tables), ``engine`` (opening, migrating, reconnecting), ``ledger``
(cache and ledger), ``codec`` (how scores are stored), ``pools``, ``slices``, ``sizes`` (what the
store holds, trimming), ``runs``, ``leases``; ``database`` joins them as ``Store``.
"""

from barapi.store.database import Store
from barapi.store.engine import HOME_ENV, STORE_ENV, home_dir
from barapi.store.leases import LEASE_TTL_S, Lease, PoolHold, holder_alive, lease_holder, renewing
from barapi.store.schema import PAID_KINDS, Checkpoint, LabelSet, LeaseRow, LedgerEntry, MetricRow, Pool, PoolHoldRow, PoolSliceRow, Response, RunRecord, response_key

__all__ = [
    "HOME_ENV", "LEASE_TTL_S", "PAID_KINDS", "STORE_ENV", "Checkpoint", "LabelSet", "Lease", "LeaseRow", "LedgerEntry", "MetricRow", "Pool",
    "PoolHold", "PoolHoldRow", "PoolSliceRow", "Response", "RunRecord", "Store", "holder_alive", "home_dir", "lease_holder", "renewing", "response_key",
]
