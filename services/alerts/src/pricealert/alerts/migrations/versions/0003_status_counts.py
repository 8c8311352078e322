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

from pricealert.alerts.sqlfunctions import apply_functions

revision: str = "0003_alerts_status_counts"
down_revision: str | None = "0002_alerts_fast_paths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
    apply_functions("alerts_count_status")
    op.execute(
        "CREATE TRIGGER alerts_count_rows AFTER INSERT OR DELETE ON alerts "
        "FOR EACH ROW EXECUTE FUNCTION alerts_count_status()"
    )
    op.execute(
        "CREATE TRIGGER alerts_count_changes AFTER UPDATE OF user_id, status ON alerts FOR EACH ROW "
        "WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.status IS DISTINCT FROM NEW.status) "
        "EXECUTE FUNCTION alerts_count_status()"
    )
    # Databases made before functions.sql have a create function that always counts rows: read the counts.
    apply_functions("alerts_create")


def downgrade() -> None:
    """Back to counting rows (alerts_create does so again once the counts table is gone)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS alerts_count_changes ON alerts")
    op.execute("DROP TRIGGER IF EXISTS alerts_count_rows ON alerts")
    op.execute("DROP FUNCTION IF EXISTS alerts_count_status()")
    op.execute("DROP TABLE IF EXISTS alerts_status_counts")
