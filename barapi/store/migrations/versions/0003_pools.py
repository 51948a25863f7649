"""Budget pools: a named dollar limit that every run drawing on it shares, on any machine."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table("pools", sa.Column("name", sa.String, primary_key=True), sa.Column("budget_usd", sa.Float, nullable=False),
                    sa.Column("updated_at", sa.Float, nullable=False))
    with op.batch_alter_table("ledger") as ledger:
        ledger.add_column(sa.Column("pool", sa.String, nullable=True))
        ledger.create_index("ix_ledger_pool", ["pool"])
