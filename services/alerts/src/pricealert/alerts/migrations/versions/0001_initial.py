"""Alerts and the outbox of alert events.

Revision ID: 0001_alerts_initial
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_alerts_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the alerts and alerts_outbox tables."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("condition", sa.String(8), nullable=False),
        sa.Column("target_price", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("triggered_at", TS, nullable=True),
        sa.Column("triggered_price", sa.String(64), nullable=True),
        sa.Column("triggered_exchange_time", TS, nullable=True),
        sa.Column("trigger_id", sa.String(64), nullable=True),
        sa.Column("delivery_status", sa.String(16), nullable=True),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=True),
    )
    op.create_index("ix_alerts_user_created", "alerts", ["user_id", "created_at"])
    op.create_index("ix_alerts_user_status", "alerts", ["user_id", "status"])
    op.create_index("ix_alerts_status_expires", "alerts", ["status", "expires_at"])
    op.create_table(
        "alerts_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("alerts_outbox")
    op.drop_index("ix_alerts_status_expires", table_name="alerts")
    op.drop_index("ix_alerts_user_status", table_name="alerts")
    op.drop_index("ix_alerts_user_created", table_name="alerts")
    op.drop_table("alerts")
