"""Run leases: which process drives a run, until when (a dead holder's lease expires)."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table("leases", sa.Column("run", sa.String, primary_key=True), sa.Column("holder", sa.String, nullable=False),
                    sa.Column("expires_at", sa.Float, nullable=False))
