"""Postgres: an UPDATE or DELETE of alerts changes the status counts once, at its end, in (user, status) order.

Row by row, a statement over many users' alerts (the expiry sweep) locked their count rows in whatever order it met
the alerts, while a trigger batch locked them in user order: the two could deadlock. Applied at the statement's end
and sorted, every writer takes count rows in one order, after the alert rows it changes. Inserts keep 0003's row
trigger: each insert is one alert (a create), whose count row is the only one it locks. A TRUNCATE of alerts
empties the counts too. The order is the C collation's (code points), the order Python's sorted() gives the
trigger batches: under a language collation the two could differ.

Revision ID: 0004_alerts_counts_per_statement
Revises: 0003_alerts_status_counts
Create Date: 2025-01-04
"""

from collections.abc import Sequence

from alembic import op

from pricealert.alerts.sqlfunctions import apply_functions

revision: str = "0004_alerts_counts_per_statement"
down_revision: str | None = "0003_alerts_status_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_TRIGGERS = (
    "CREATE TRIGGER alerts_count_rows AFTER INSERT OR DELETE ON alerts "
    "FOR EACH ROW EXECUTE FUNCTION alerts_count_status()",
    "CREATE TRIGGER alerts_count_changes AFTER UPDATE OF user_id, status ON alerts FOR EACH ROW "
    "WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.status IS DISTINCT FROM NEW.status) "
    "EXECUTE FUNCTION alerts_count_status()",
)


def upgrade() -> None:
    """Swap the row triggers of updates and deletes for statement triggers (Postgres only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    # No writer may change alerts between the swap's statements (this runs in one transaction).
    op.execute("LOCK TABLE alerts IN SHARE ROW EXCLUSIVE MODE")
    op.execute("DROP TRIGGER alerts_count_changes ON alerts")
    op.execute("DROP TRIGGER alerts_count_rows ON alerts")
    apply_functions("alerts_count_statement")
    op.execute(
        "CREATE TRIGGER alerts_count_inserts AFTER INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION alerts_count_status()"
    )
    # Transition tables allow neither a column list nor two events on one trigger: one trigger per event.
    op.execute(
        "CREATE TRIGGER alerts_count_updates AFTER UPDATE ON alerts "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION alerts_count_statement()"
    )
    op.execute(
        "CREATE TRIGGER alerts_count_deletes AFTER DELETE ON alerts REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION alerts_count_statement()"
    )
    op.execute(
        "CREATE TRIGGER alerts_count_truncates AFTER TRUNCATE ON alerts "
        "FOR EACH STATEMENT EXECUTE FUNCTION alerts_count_statement()"
    )


def downgrade() -> None:
    """Back to 0003's row triggers."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("LOCK TABLE alerts IN SHARE ROW EXCLUSIVE MODE")
    for trigger in ("alerts_count_truncates", "alerts_count_deletes", "alerts_count_updates", "alerts_count_inserts"):
        op.execute(f"DROP TRIGGER {trigger} ON alerts")
    op.execute("DROP FUNCTION alerts_count_statement()")
    for statement in ROW_TRIGGERS:
        op.execute(statement)
