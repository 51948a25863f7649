"""The response cache, the ledger, runs and checkpoints (barapi's first schema)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("label_sets", sa.Column("id", sa.Integer, primary_key=True), sa.Column("digest", sa.String, nullable=False, unique=True),
                    sa.Column("labels", sa.String, nullable=False))
    op.create_table("responses", sa.Column("key", sa.String, primary_key=True), sa.Column("provider", sa.String, nullable=False),
                    sa.Column("model", sa.String, nullable=False), sa.Column("label_set", sa.Integer, nullable=False),
                    sa.Column("scores", sa.LargeBinary, nullable=False), sa.Column("created_at", sa.Float, nullable=False))
    op.create_table("ledger", sa.Column("id", sa.Integer, primary_key=True), sa.Column("ts", sa.Float, nullable=False),
                    sa.Column("run", sa.String, nullable=False), sa.Column("provider", sa.String, nullable=False),
                    sa.Column("model", sa.String, nullable=False), sa.Column("image_key", sa.String, nullable=False),
                    sa.Column("kind", sa.String, nullable=False), sa.Column("cost_usd", sa.Float, nullable=False))
    op.create_index("ix_ledger_run", "ledger", ["run"])
    op.create_table("runs", sa.Column("name", sa.String, primary_key=True), sa.Column("created_at", sa.Float, nullable=False),
                    sa.Column("updated_at", sa.Float, nullable=False), sa.Column("status", sa.String, nullable=False),
                    sa.Column("config", sa.String, nullable=False), sa.Column("result", sa.String, nullable=False, server_default="{}"))
    op.create_table("checkpoints", sa.Column("run", sa.String, primary_key=True), sa.Column("iteration", sa.Integer, nullable=False),
                    sa.Column("state", sa.LargeBinary, nullable=False), sa.Column("updated_at", sa.Float, nullable=False))
