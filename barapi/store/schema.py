"""The tables (SQLModel) and the cache's key: what is stored, not how."""

from __future__ import annotations

import hashlib
import json

from sqlmodel import Field, SQLModel

# Ledger kinds that count as money spent (a 'lost' row may have been billed).
PAID_KINDS = ("paid", "failed", "reserved", "lost")


class LabelSet(SQLModel, table=True):
    """Label names, stored once per distinct set: a full ImageNet answer is 1,000 names."""

    __tablename__ = "label_sets"
    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(unique=True)
    labels: str


class Response(SQLModel, table=True):
    """One provider answer: its scores in the order of its label set, encoded by ``codec``
    (``barapi.store.codec``: compact, with an exact round trip)."""

    __tablename__ = "responses"
    key: str = Field(primary_key=True)
    provider: str
    model: str
    label_set: int
    scores: bytes
    created_at: float
    codec: int = 0


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger"
    id: int | None = Field(default=None, primary_key=True)
    ts: float
    run: str = Field(index=True)
    provider: str
    model: str
    image_key: str
    kind: str
    cost_usd: float
    pool: str | None = Field(default=None, index=True)
    slice: int | None = Field(default=None, index=True)  # the pool slice it was booked on (PoolSliceRow)


class Pool(SQLModel, table=True):
    """A dollar limit shared by every run drawing on it, whatever process or machine.
    ``drawn_usd`` is what it has given out, kept as a running total in the transactions that
    change it: the cost of every paid-kind ledger row booked on it outside an open slice, plus
    each open slice's whole grant. The ledger stays the record (``Store.pool_verify``)."""

    __tablename__ = "pools"
    name: str = Field(primary_key=True)
    budget_usd: float
    updated_at: float
    drawn_usd: float = 0.0


class PoolSliceRow(SQLModel, table=True):
    """Dollars one worker took from a pool to book its requests against on its own, counted as
    given out for everyone else; closed (what it did not use goes back) when the run ends, when
    its holder is seen dead, or once its holder stopped renewing it."""

    __tablename__ = "pool_slices"
    __table_args__ = {"sqlite_autoincrement": True}  # an id is never reused: the ledger's rows name it after it closed
    id: int | None = Field(default=None, primary_key=True)
    pool: str = Field(index=True)
    run: str
    holder: str
    granted_usd: float
    expires_at: float


class PoolHoldRow(SQLModel, table=True):
    """Dollars a run keeps aside on a pool to end measured, while its holder renews them."""

    __tablename__ = "pool_holds"
    holder: str = Field(primary_key=True)
    pool: str = Field(index=True)
    run: str
    usd: float
    expires_at: float


class LeaseRow(SQLModel, table=True):
    """Which process drives a run, until when; renewed while it lives."""

    __tablename__ = "leases"
    run: str = Field(primary_key=True)
    holder: str
    expires_at: float


class RunRecord(SQLModel, table=True):
    __tablename__ = "runs"
    name: str = Field(primary_key=True)
    created_at: float
    updated_at: float
    status: str
    config: str
    result: str = "{}"


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"
    run: str = Field(primary_key=True)
    iteration: int
    state: bytes
    updated_at: float


class MetricRow(SQLModel, table=True):
    __tablename__ = "metrics"
    run: str = Field(primary_key=True)
    iteration: int = Field(primary_key=True)
    queries_paid: int
    queries_cached: int
    cost_usd: float
    loss: float | None = None
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    ts: float



def response_key(provider: str, scope: str, image: bytes) -> str:
    digest = hashlib.sha256(image).hexdigest()
    return hashlib.sha256(json.dumps([provider, scope, digest]).encode()).hexdigest()
