"""Postgres: every function again from functions.sql, so that old and fresh databases hold the same definitions.

Databases upgraded before the functions moved to functions.sql hold alerts_create as 0003 wrote it (reading the
counts only); a fresh upgrade writes functions.sql's, which also counts rows when the counts table is absent.
Nothing else changes; downgrading keeps the definitions, which behave the same at every revision from 0002.

Revision ID: 0005_alerts_functions_from_file
Revises: 0004_alerts_counts_per_statement
Create Date: 2025-01-05
"""

from collections.abc import Sequence

from pricealert.alerts.sqlfunctions import apply_functions, definitions

revision: str = "0005_alerts_functions_from_file"
down_revision: str | None = "0004_alerts_counts_per_statement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """CREATE OR REPLACE every function of functions.sql."""
    apply_functions(*definitions())


def downgrade() -> None:
    """Nothing to undo: the definitions behave as the ones they replaced."""
