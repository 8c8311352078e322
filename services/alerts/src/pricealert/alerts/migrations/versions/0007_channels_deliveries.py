"""Channels, the channels each alert and firing notifies, and the log of every delivery attempt.

`channels` holds each user's email, webhook and Apprise channels (webhook secrets: the current one and the one
rotated out, valid until `previous_secret_until`); `alerts.channel_ids` and `firings.channel_ids` name the
channels, comma-separated (null: the account's email, as before); `deliveries` records every attempt per firing
per channel, at most once per (trigger, channel, attempt).

Revision ID: 0007_alerts_channels_deliveries
Revises: 0006_alerts_definitions_firings
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_alerts_channels_deliveries"
down_revision: str | None = "0006_alerts_definitions_firings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


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


def downgrade() -> None:
    """Back to email only: the channels, their log and the channel columns go."""
    with op.batch_alter_table("firings") as batch:
        batch.drop_column("channel_ids")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("channel_ids")
    op.drop_table("deliveries")
    op.drop_index("ix_channels_verify_token", table_name="channels")
    op.drop_index("ix_channels_user_created", table_name="channels")
    op.drop_table("channels")
