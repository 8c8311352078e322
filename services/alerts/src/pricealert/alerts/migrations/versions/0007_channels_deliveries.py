"""Channels, the channels each alert and firing notifies, and the log of every delivery attempt.

`channels` holds each user's email, webhook and Apprise channels (webhook secrets: the current one and the one
rotated out, valid until `previous_secret_until`); `alerts.channel_ids` and `firings.channel_ids` name the
channels, comma-separated (null: the account's email, as before); `deliveries` records every attempt per firing
per channel, at most once per (trigger, channel, attempt). On Postgres `alerts_create` takes the channel ids last
(default null): the 20-argument form goes, as 0006 did with the 13-argument one.

Revision ID: 0007_alerts_channels_deliveries
Revises: 0006_alerts_definitions_firings
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pricealert.alerts.sqlfunctions import apply_functions

revision: str = "0007_alerts_channels_deliveries"
down_revision: str | None = "0006_alerts_definitions_firings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
OLD_CREATE_ARGUMENTS = (
    "text, integer, varchar, varchar, varchar, varchar, varchar, varchar, varchar, timestamptz, timestamptz, "
    "varchar, text, varchar, varchar, varchar, varchar, varchar, integer, text"
)
NEW_CREATE_ARGUMENTS = f"{OLD_CREATE_ARGUMENTS}, text"
# alerts_create as functions.sql defined it before this revision (0006): what a downgrade puts back.
OLD_CREATE = """
CREATE OR REPLACE FUNCTION alerts_create(
    p_lock text, p_limit integer, p_id varchar, p_user_id varchar, p_email varchar, p_symbol varchar,
    p_condition varchar, p_target_price varchar, p_name varchar, p_now timestamptz, p_expires_at timestamptz,
    p_stream varchar, p_fields text, p_low varchar DEFAULT NULL, p_high varchar DEFAULT NULL,
    p_percent varchar DEFAULT NULL, p_window varchar DEFAULT NULL, p_frequency varchar DEFAULT 'once',
    p_cooldown_s integer DEFAULT NULL, p_message text DEFAULT NULL
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
                        updated_at, expires_at, low, high, percent, "window", frequency, cooldown_s, message)
    VALUES (p_id, p_user_id, p_email, p_symbol, p_condition, p_target_price, p_name, 'active', p_now, p_now,
            p_expires_at, p_low, p_high, p_percent, p_window, p_frequency, p_cooldown_s, p_message);
    INSERT INTO alerts_outbox (stream, fields, created_at) VALUES (p_stream, p_fields, p_now);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    """Add the channels and deliveries tables and the channel columns of alerts and firings."""
    op.create_table(
        "channels",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_until", TS, nullable=True),
        sa.Column("verify_token_hash", sa.String(64), nullable=True),
        sa.Column("verify_expires_at", TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_channels_user_created", "channels", ["user_id", "created_at", "id"])
    op.create_index("ix_channels_verify_token", "channels", ["verify_token_hash"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("trigger_id", sa.String(80), nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("channel_id", sa.String(36), nullable=False),
        sa.Column("channel_kind", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("next_retry_at", TS, nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.UniqueConstraint("trigger_id", "channel_id", "attempt", name="uq_deliveries_attempt"),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("channel_ids", sa.Text(), nullable=True))
    with op.batch_alter_table("firings") as batch:
        batch.add_column(sa.Column("channel_ids", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS alerts_create({OLD_CREATE_ARGUMENTS})")
        apply_functions("alerts_create")


def downgrade() -> None:
    """Back to email only: the channels, their log and the channel columns go."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS alerts_create({NEW_CREATE_ARGUMENTS})")
        op.execute(OLD_CREATE)
    with op.batch_alter_table("firings") as batch:
        batch.drop_column("channel_ids")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("channel_ids")
    op.drop_table("deliveries")
    op.drop_index("ix_channels_verify_token", table_name="channels")
    op.drop_index("ix_channels_user_created", table_name="channels")
    op.drop_table("channels")
