"""A slice drawn from a pool on a server counts every hold committed before it: one statement
that locks the pool's row and reads its holds reads them as they were when it began, so a hold
committed while it waited for the lock went uncounted and the slice took money that hold kept
for another run's ending (which then ended unmeasured). The draw is a function, so that it
still takes one round trip: its holds are read in a statement of their own, after the lock.
SQLite needs none: there a write takes the one write lock before it reads."""

from alembic import op

revision = "0007"
down_revision = "0006"

DRAW_SLICE = """
CREATE OR REPLACE FUNCTION barapi_draw_slice(
    p_pool text, p_run text, p_holder text, p_need double precision, p_wanted double precision,
    p_share double precision, p_floor double precision, p_now double precision, p_until double precision
) RETURNS TABLE (slice_id integer, granted double precision) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    free double precision;
    amount double precision;
BEGIN
    PERFORM 1 FROM pools WHERE name = p_pool FOR UPDATE;
    -- A new statement, hence a new snapshot: every hold committed before the lock was ours.
    SELECT budget_usd - drawn_usd - (SELECT COALESCE(SUM(usd), 0) FROM pool_holds WHERE pool = p_pool AND expires_at >= p_now)
      INTO free FROM pools WHERE name = p_pool;
    IF free IS NULL OR free + 1e-9 < p_need OR LEAST(p_wanted, free * p_share) + 1e-9 < p_floor THEN
        RETURN;
    END IF;
    amount := GREATEST(p_need, LEAST(p_wanted, free * p_share));
    UPDATE pools SET drawn_usd = drawn_usd + amount WHERE name = p_pool;
    INSERT INTO pool_slices (pool, run, holder, granted_usd, expires_at) VALUES (p_pool, p_run, p_holder, amount, p_until)
      RETURNING id INTO slice_id;
    granted := amount;
    RETURN NEXT;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DRAW_SLICE)

