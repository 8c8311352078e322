"""The alerts API through a real PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer).

The tests imported here run in their home modules directly (on SQLite and on Postgres); here they run once more
with the app's database reached through PgBouncer, which hands out a server connection per transaction.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pricealert.alerts.maintenance import MIGRATIONS, VERSION_TABLE
from pricealert.common.db import upgrade_database
from pricealert.common.migrations import MIGRATION_LOCK_CLASS
from pricealert.testsupport.polling import eventually

from .test_concurrency import (
    test_competing_relays_publish_each_event_once_in_order,
    test_concurrent_creates_respect_the_limit,
)
from .test_fast_paths import test_listing_pages_and_totals_past_the_end
from .test_fast_routes import test_a_created_alert_reads_the_same, test_the_fast_path_answers_without_the_routes
from .test_listing import test_filters_by_status_and_symbol, test_pages_are_newest_first_with_links
from .test_routes_alerts import (
    test_create_returns_the_alert,
    test_delete_is_soft_and_idempotent,
    test_limit_of_active_alerts,
    test_other_users_alert_is_not_found,
)
from .test_write_conflicts import (
    holder,
    observer,
    test_a_deadlock_victim_runs_again,
    test_a_delete_during_a_trigger_batch_of_the_same_user_waits_its_turn,
    test_batches_sweeps_and_deletes_over_many_users_keep_exact_counts,
)

__all__ = [
    "holder",
    "observer",
    "test_a_created_alert_reads_the_same",
    "test_a_deadlock_victim_runs_again",
    "test_a_delete_during_a_trigger_batch_of_the_same_user_waits_its_turn",
    "test_batches_sweeps_and_deletes_over_many_users_keep_exact_counts",
    "test_competing_relays_publish_each_event_once_in_order",
    "test_concurrent_creates_respect_the_limit",
    "test_create_returns_the_alert",
    "test_delete_is_soft_and_idempotent",
    "test_filters_by_status_and_symbol",
    "test_limit_of_active_alerts",
    "test_listing_pages_and_totals_past_the_end",
    "test_other_users_alert_is_not_found",
    "test_pages_are_newest_first_with_links",
    "test_the_fast_path_answers_without_the_routes",
]

pytestmark = pytest.mark.usefixtures("catalog")
ADVISORY_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'"
)


@pytest.fixture
def database_url(pgbouncer_url: str) -> str:
    """The app's database through PgBouncer (the tests' own connections, `holder` and `observer`, stay direct)."""
    return pgbouncer_url


@pytest.fixture
def pg_app_database_url(pgbouncer_url: str) -> str:
    """pg_app's database through PgBouncer."""
    return pgbouncer_url


async def test_a_migration_waits_for_one_under_way_through_the_pooler(pgbouncer_url: str, postgres_url: str) -> None:
    """The migration lock is taken inside the migration's transaction, so it holds across PgBouncer's connections."""
    other, observer = await asyncpg.connect(postgres_url), await asyncpg.connect(postgres_url)
    try:
        async with other.transaction():  # another replica migrating: it holds the lock until its commit
            await other.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", MIGRATION_LOCK_CLASS, VERSION_TABLE)
            migrating = asyncio.create_task(
                asyncio.to_thread(upgrade_database, pgbouncer_url, MIGRATIONS, VERSION_TABLE)
            )
            await eventually(
                lambda: observer.fetchval(ADVISORY_WAITERS),
                what="the migration waiting for the lock",
                alive=migrating,
            )
            assert not migrating.done()
        await asyncio.wait_for(migrating, timeout=30)
        assert await observer.fetchval(f"SELECT count(*) FROM {VERSION_TABLE}") == 1
    finally:
        await other.close()
        await observer.close()
