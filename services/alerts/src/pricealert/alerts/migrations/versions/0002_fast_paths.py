"""Indexes matching the listing's order, and Postgres functions doing a create or an outbox take in one call.

Revision ID: 0002_alerts_fast_paths
Revises: 0001_alerts_initial
Create Date: 2025-01-02
"""

from collections.abc import Sequence

from alembic import op

from pricealert.alerts.sqlfunctions import apply_functions

revision: str = "0002_alerts_fast_paths"
down_revision: str | None = "0001_alerts_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Replace the per-user indexes by ones in listing order; add the Postgres functions."""
    op.create_index("ix_alerts_user_created_id", "alerts", ["user_id", "created_at", "id"])
    op.create_index("ix_alerts_user_status_created", "alerts", ["user_id", "status", "created_at", "id"])
    op.drop_index("ix_alerts_user_created", table_name="alerts")
    op.drop_index("ix_alerts_user_status", table_name="alerts")
    apply_functions("alerts_create", "alerts_outbox_take")


def downgrade() -> None:
    """Back to the initial indexes, without the functions."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS alerts_outbox_take(bigint, integer)")
        op.execute(
            "DROP FUNCTION IF EXISTS alerts_create(text, integer, varchar, varchar, varchar, varchar, "
            "varchar, varchar, varchar, timestamptz, timestamptz, varchar, text)"
        )
        # functions.sql's form since 0006 (with the definition's fields), which a fresh upgrade applies here.
        op.execute(
            "DROP FUNCTION IF EXISTS alerts_create(text, integer, varchar, varchar, varchar, varchar, "
            "varchar, varchar, varchar, timestamptz, timestamptz, varchar, text, varchar, varchar, varchar, "
            "varchar, varchar, integer, text)"
        )
    op.create_index("ix_alerts_user_created", "alerts", ["user_id", "created_at"])
    op.create_index("ix_alerts_user_status", "alerts", ["user_id", "status"])
    op.drop_index("ix_alerts_user_status_created", table_name="alerts")
    op.drop_index("ix_alerts_user_created_id", table_name="alerts")
