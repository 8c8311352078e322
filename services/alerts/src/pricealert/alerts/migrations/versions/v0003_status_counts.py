"""Postgres: each user's alerts counted by status in a table kept by a trigger.

A create checks the user's active count and a listing shows a total: counting rows cost time in proportion
to the user's alerts (every one they ever made, for the total). The counts change in the same transaction
as the rows they count, so a statement sees counts and rows of the same snapshot.

Revision ID: 0003_alerts_status_counts
Revises: 0002_alerts_fast_paths
Create Date: 2025-01-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_alerts_status_counts"
down_revision: str | None = "0002_alerts_fast_paths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNT_FUNCTION = """
CREATE OR REPLACE FUNCTION alerts_count_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE alerts_status_counts SET n = n - 1 WHERE user_id = OLD.user_id AND status = OLD.status;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO alerts_status_counts AS c (user_id, status, n) VALUES (NEW.user_id, NEW.status, 1)
        ON CONFLICT (user_id, status) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END
$$
"""

# 0002's function; the active count comes from `source` (the per-user lock still orders the creates).
CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION alerts_create(
    p_lock text, p_limit integer, p_id varchar, p_user_id varchar, p_email varchar, p_symbol varchar,
    p_condition varchar, p_target_price varchar, p_name varchar, p_now timestamptz, p_expires_at timestamptz,
    p_stream varchar, p_fields text
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_active integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_lock));
    SELECT {active} INTO v_active FROM {source} WHERE user_id = p_user_id AND status = 'active';
    IF v_active >= p_limit THEN
        RETURN v_active;
    END IF;
    INSERT INTO alerts (id, user_id, email, symbol, condition, target_price, name, status, created_at,
                        updated_at, expires_at)
    VALUES (p_id, p_user_id, p_email, p_symbol, p_condition, p_target_price, p_name, 'active', p_now, p_now,
            p_expires_at);
    INSERT INTO alerts_outbox (stream, fields, created_at) VALUES (p_stream, p_fields, p_now);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    """Create and fill the counts, with the trigger that keeps them, on Postgres (SQLite counts rows)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    # Writers of another version wait until the counts are filled and kept (this runs in one transaction).
    op.execute("LOCK TABLE alerts IN SHARE ROW EXCLUSIVE MODE")
    op.execute("""
        CREATE TABLE alerts_status_counts (
            user_id varchar(64) NOT NULL, status varchar(16) NOT NULL, n integer NOT NULL,
            PRIMARY KEY (user_id, status)
        )
    """)
    op.execute(
        "INSERT INTO alerts_status_counts (user_id, status, n) "
        "SELECT user_id, status, count(*) FROM alerts GROUP BY user_id, status"
    )
    op.execute(COUNT_FUNCTION)
    op.execute(
        "CREATE TRIGGER alerts_count_rows AFTER INSERT OR DELETE ON alerts "
        "FOR EACH ROW EXECUTE FUNCTION alerts_count_status()"
    )
    op.execute(
        "CREATE TRIGGER alerts_count_changes AFTER UPDATE OF user_id, status ON alerts FOR EACH ROW "
        "WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.status IS DISTINCT FROM NEW.status) "
        "EXECUTE FUNCTION alerts_count_status()"
    )
    op.execute(CREATE_FUNCTION.format(active="n", source="alerts_status_counts"))


def downgrade() -> None:
    """Back to counting rows."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS alerts_count_changes ON alerts")
    op.execute("DROP TRIGGER IF EXISTS alerts_count_rows ON alerts")
    op.execute("DROP FUNCTION IF EXISTS alerts_count_status()")
    op.execute("DROP TABLE IF EXISTS alerts_status_counts")
    op.execute(CREATE_FUNCTION.format(active="count(*)", source="alerts"))
