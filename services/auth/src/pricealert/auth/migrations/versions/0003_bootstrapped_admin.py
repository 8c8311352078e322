"""users.created_by_bootstrap: which account the ADMIN_EMAIL bootstrap created (and may re-password).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add users.created_by_bootstrap, false for every existing account."""
    # A plain ADD COLUMN (SQLite supports it with a constant default): batch mode would rebuild the
    # table on SQLite and lose the expression index on lower(username).
    op.add_column("users", sa.Column("created_by_bootstrap", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Drop users.created_by_bootstrap."""
    op.drop_column("users", "created_by_bootstrap")
