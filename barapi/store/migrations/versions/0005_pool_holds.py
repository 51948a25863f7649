"""Pool holds: what a run on a pool keeps aside to end measured (its label mapping, closing pass and
test set), counted against the pool while its holder renews it."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table("pool_holds", sa.Column("holder", sa.String, primary_key=True), sa.Column("pool", sa.String, nullable=False, index=True),
                    sa.Column("run", sa.String, nullable=False), sa.Column("usd", sa.Float, nullable=False),
                    sa.Column("expires_at", sa.Float, nullable=False))
