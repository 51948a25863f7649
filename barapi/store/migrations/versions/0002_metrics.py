"""Metric history: one row per run and iteration."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "metrics", sa.Column("run", sa.String, primary_key=True), sa.Column("iteration", sa.Integer, primary_key=True),
        sa.Column("queries_paid", sa.Integer, nullable=False), sa.Column("queries_cached", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False), sa.Column("loss", sa.Float), sa.Column("train_accuracy", sa.Float),
        sa.Column("test_accuracy", sa.Float), sa.Column("ts", sa.Float, nullable=False),
    )
