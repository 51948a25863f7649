"""Pools at scale: a pool keeps what it has given out as a running total (drawn_usd), so a
reservation no longer sums the pool's whole ledger; slices of a pool that a worker books against
on its own (pool_slices, and the ledger row's slice); and a codec per cached answer (0: the raw
float64 scores every earlier answer was stored as)."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

PAID_KINDS = ("paid", "failed", "reserved", "lost")


def upgrade() -> None:
    with op.batch_alter_table("pools") as pools:
        pools.add_column(sa.Column("drawn_usd", sa.Float, nullable=False, server_default="0"))
    with op.batch_alter_table("ledger") as ledger:
        ledger.add_column(sa.Column("slice", sa.Integer, nullable=True))
        ledger.create_index("ix_ledger_slice", ["slice"])
    with op.batch_alter_table("responses") as responses:
        responses.add_column(sa.Column("codec", sa.Integer, nullable=False, server_default="0"))
    op.create_table("pool_slices", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("pool", sa.String, nullable=False, index=True), sa.Column("run", sa.String, nullable=False),
                    sa.Column("holder", sa.String, nullable=False), sa.Column("granted_usd", sa.Float, nullable=False),
                    sa.Column("expires_at", sa.Float, nullable=False), sqlite_autoincrement=True)
    # An existing store: every pool has given out what its ledger counts as spent (no slice is open yet).
    op.execute(f"UPDATE pools SET drawn_usd = COALESCE((SELECT SUM(cost_usd) FROM ledger WHERE ledger.pool = pools.name "
               f"AND ledger.kind IN {PAID_KINDS}), 0)")
