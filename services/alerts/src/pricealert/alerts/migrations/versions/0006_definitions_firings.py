"""Percent, range and recurring alerts: the new definition fields, versions, firing counts, and a table of firings.

`target_price` becomes optional (percent and range alerts have none) and `condition` wider ("enter_range").
Alerts that already fired get their one firing in `firings` (without a trade id: v1 did not keep it), so their
history is not empty. On Postgres `alerts_create` takes the new fields, each defaulting to a v1 alert's: the
13-argument form goes (two forms would make a 13-argument call ambiguous).

Revision ID: 0006_alerts_definitions_firings
Revises: 0005_alerts_functions_from_file
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pricealert.alerts.sqlfunctions import apply_functions

revision: str = "0006_alerts_definitions_firings"
down_revision: str | None = "0005_alerts_functions_from_file"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
OLD_CREATE_ARGUMENTS = (
    "text, integer, varchar, varchar, varchar, varchar, varchar, varchar, varchar, timestamptz, timestamptz, "
    "varchar, text"
)
NEW_CREATE_ARGUMENTS = f"{OLD_CREATE_ARGUMENTS}, varchar, varchar, varchar, varchar, varchar, integer, text"
# alerts_create as functions.sql defined it before this revision: what a downgrade puts back.
OLD_CREATE = """
CREATE OR REPLACE FUNCTION alerts_create(
    p_lock text, p_limit integer, p_id varchar, p_user_id varchar, p_email varchar, p_symbol varchar,
    p_condition varchar, p_target_price varchar, p_name varchar, p_now timestamptz, p_expires_at timestamptz,
    p_stream varchar, p_fields text
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_active integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_lock));
    IF to_regclass('alerts_status_counts') IS NULL THEN
        SELECT count(*) INTO v_active FROM alerts WHERE user_id = p_user_id AND status = 'active';
    ELSE
        SELECT n INTO v_active FROM alerts_status_counts WHERE user_id = p_user_id AND status = 'active';
    END IF;
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

_alerts = sa.table(
    "alerts",
    sa.column("id", sa.String),
    sa.column("trigger_id", sa.String),
    sa.column("triggered_at", TS),
    sa.column("triggered_price", sa.String),
    sa.column("triggered_exchange_time", TS),
    sa.column("delivery_status", sa.String),
    sa.column("delivery_error", sa.Text),
    sa.column("delivery_attempts", sa.Integer),
)


def upgrade() -> None:
    """Add the definition and firing columns, the firings table (filled from past firings), the new create."""
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("condition", existing_type=sa.String(8), type_=sa.String(16), existing_nullable=False)
        batch.alter_column("target_price", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("low", sa.String(64), nullable=True))
        batch.add_column(sa.Column("high", sa.String(64), nullable=True))
        batch.add_column(sa.Column("percent", sa.String(64), nullable=True))
        batch.add_column(sa.Column("window", sa.String(8), nullable=True))
        batch.add_column(sa.Column("frequency", sa.String(16), nullable=False, server_default="once"))
        batch.add_column(sa.Column("cooldown_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("firing_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_fired_at", TS, nullable=True))
        batch.add_column(sa.Column("paused_reason", sa.Text(), nullable=True))
    firings = op.create_table(
        "firings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("trigger_id", sa.String(80), nullable=False, unique=True),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("firing", sa.Integer(), nullable=True),
        sa.Column("fired_at", TS, nullable=True),
        sa.Column("price", sa.String(64), nullable=True),
        sa.Column("trade_id", sa.BigInteger(), nullable=True),
        sa.Column("exchange_time", TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("delivery_status", sa.String(16), nullable=True),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=True),
    )
    op.create_index("ix_firings_alert_firing", "firings", ["alert_id", "firing", "id"])
    fired = _alerts.c.triggered_at.is_not(None)
    op.execute(
        sa.insert(firings).from_select(
            [
                "trigger_id",
                "alert_id",
                "firing",
                "fired_at",
                "price",
                "exchange_time",
                "version",
                "delivery_status",
                "delivery_error",
                "delivery_attempts",
            ],
            sa.select(
                sa.func.coalesce(_alerts.c.trigger_id, _alerts.c.id),
                _alerts.c.id,
                sa.literal(1),
                _alerts.c.triggered_at,
                _alerts.c.triggered_price,
                _alerts.c.triggered_exchange_time,
                sa.literal(1),
                _alerts.c.delivery_status,
                _alerts.c.delivery_error,
                _alerts.c.delivery_attempts,
            ).where(fired),
        )
    )
    op.execute("UPDATE alerts SET firing_count = 1, last_fired_at = triggered_at WHERE triggered_at IS NOT NULL")
    if postgres:
        op.execute(f"DROP FUNCTION IF EXISTS alerts_create({OLD_CREATE_ARGUMENTS})")
        apply_functions("alerts_create")


def downgrade() -> None:
    """Back to v1 alerts: those v1 cannot hold (no target price) are dropped, paused ones become active again."""
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(f"DROP FUNCTION IF EXISTS alerts_create({NEW_CREATE_ARGUMENTS})")
        op.execute(OLD_CREATE)
    op.drop_index("ix_firings_alert_firing", table_name="firings")
    op.drop_table("firings")
    op.execute("DELETE FROM alerts WHERE target_price IS NULL")
    op.execute("UPDATE alerts SET status = 'active' WHERE status = 'paused'")
    with op.batch_alter_table("alerts") as batch:
        for column in (
            "paused_reason",
            "last_fired_at",
            "firing_count",
            "version",
            "message",
            "cooldown_s",
            "frequency",
            "window",
            "percent",
            "high",
            "low",
        ):
            batch.drop_column(column)
        batch.alter_column("target_price", existing_type=sa.String(64), nullable=False)
        batch.alter_column("condition", existing_type=sa.String(16), type_=sa.String(8), existing_nullable=False)
