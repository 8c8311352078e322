"""The alerts API through a real PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer).

The tests imported here run in their home modules directly (on SQLite and on Postgres); here they run once more
with the app's database reached through PgBouncer, which hands out a server connection per transaction.
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import pytest

from pricealert.alerts.maintenance import VERSION_TABLE

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


@pytest.fixture
def database_url(pgbouncer_url: str) -> str:
    """The app's database through PgBouncer (the tests' own connections, `holder` and `observer`, stay direct)."""
    return pgbouncer_url


@pytest.fixture
def pg_app_database_url(pgbouncer_url: str) -> str:
    """pg_app's database through PgBouncer."""
    return pgbouncer_url


async def test_replicas_starting_together_migrate_one_at_a_time(pgbouncer_url: str) -> None:
    """Three processes migrate auth and alerts at once through the pooler: the lock lives in each transaction."""
    environment = {**os.environ, "DATABASE_URL": pgbouncer_url, "ENV": "development"}
    command = [sys.executable, "-m", "pricealert.cli", "db", "migrate", "auth", "alerts"]
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        for _ in range(3)
    ]
    outputs = [(await p.communicate())[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    connection = await asyncpg.connect(pgbouncer_url, statement_cache_size=0)
    try:
        versions = await connection.fetch(f"SELECT version_num FROM {VERSION_TABLE}")
    finally:
        await connection.close()
    assert len(versions) == 1
