"""Indexes matching the listing's order, and Postgres functions doing a create or an outbox take in one call.

Revision ID: 0002_alerts_fast_paths
Revises: 0001_alerts_initial
Create Date: 2025-01-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_alerts_fast_paths"
down_revision: str | None = "0001_alerts_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each statement of a VOLATILE function takes a fresh snapshot (READ COMMITTED), so the count that follows
# the per-user lock sees every alert committed by the previous holder: the limit stays exact.
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
    SELECT count(*) INTO v_active FROM alerts WHERE user_id = p_user_id AND status = 'active';
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

# The relay lock is taken before the DELETE's snapshot, so a relay never takes rows behind another's back.
# While another relay holds it, the answer is one row of NULLs (no rows means an empty outbox).
TAKE_FUNCTION = """
CREATE OR REPLACE FUNCTION alerts_outbox_take(p_lock bigint, p_limit integer)
RETURNS TABLE (id bigint, stream varchar, fields text) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(p_lock) THEN
        RETURN QUERY SELECT NULL::bigint, NULL::varchar, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY
        DELETE FROM alerts_outbox AS o
        WHERE o.id IN (SELECT i.id FROM alerts_outbox AS i ORDER BY i.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
        RETURNING o.id, o.stream, o.fields;
END
$$
"""


def upgrade() -> None:
    """Replace the per-user indexes by ones in listing order; add the Postgres functions."""
    op.create_index("ix_alerts_user_created_id", "alerts", ["user_id", "created_at", "id"])
    op.create_index("ix_alerts_user_status_created", "alerts", ["user_id", "status", "created_at", "id"])
    op.drop_index("ix_alerts_user_created", table_name="alerts")
    op.drop_index("ix_alerts_user_status", table_name="alerts")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE_FUNCTION)
        op.execute(TAKE_FUNCTION)


def downgrade() -> None:
    """Back to the initial indexes, without the functions."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS alerts_outbox_take(bigint, integer)")
        op.execute(
            "DROP FUNCTION IF EXISTS alerts_create(text, integer, varchar, varchar, varchar, varchar, "
            "varchar, varchar, varchar, timestamptz, timestamptz, varchar, text)"
        )
    op.create_index("ix_alerts_user_created", "alerts", ["user_id", "created_at"])
    op.create_index("ix_alerts_user_status", "alerts", ["user_id", "status"])
    op.drop_index("ix_alerts_user_status_created", table_name="alerts")
    op.drop_index("ix_alerts_user_created_id", table_name="alerts")
