"""Writers that meet on one user's alerts on Postgres wait for each other in turn instead of deadlocking."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest
from alerts_testkit import Tokens
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.alerts.database import run_write
from pricealert.alerts.metrics import TRANSACTION_RETRIES
from pricealert.alerts.service import AlertService
from pricealert.alerts.sqlstore import SqlAlertStore
from pricealert.common.events import Condition, Trigger

from .test_status_counts import COUNTED, KEPT

pytestmark = pytest.mark.usefixtures("catalog")


@pytest.fixture
async def holder(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, to hold locks."""
    connection = await asyncpg.connect(postgres_url)
    yield connection
    await connection.close()


@pytest.fixture
async def observer(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that watches the others (outside any transaction: activity is read afresh each time)."""
    connection = await asyncpg.connect(postgres_url)
    yield connection
    await connection.close()


def sql_store_of(app: FastAPI) -> SqlAlertStore:
    store = service_of(app).store
    assert isinstance(store, SqlAlertStore)
    return store


def service_of(app: FastAPI) -> AlertService:
    service: AlertService = app.state.alerts.service
    return service


def retries() -> float:
    return sum(TRANSACTION_RETRIES.labels(s)._value.get() for s in ("40001", "40P01"))


async def lock_waiters(observer: asyncpg.Connection, count: int) -> None:
    """Wait until `count` other backends of this database wait for a lock."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        waiting = await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} backends never waited for a lock")


def trigger_of(alert: dict[str, str]) -> Trigger:
    now = int(time.time() * 1000)
    return Trigger(
        trigger_id=str(uuid.uuid4()),
        alert_id=alert["id"],
        user_id=alert["user_id"],
        email="u1@example.com",
        symbol=alert["symbol"],
        condition=Condition.ABOVE,
        target_price=Decimal(alert["target_price"]),
        price=Decimal("2"),
        trade_id=1,
        exchange_time=now,
        tick_received_at=now,
        fired_at=now,
    )


async def create_alerts(client: httpx.AsyncClient, tokens: Tokens, user: str, n: int) -> list[dict[str, str]]:
    created = [
        await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=tokens.headers(user))
        for _ in range(n)
    ]
    assert [c.status_code for c in created] == [201] * n
    return [{**c.json(), "user_id": user} for c in created]


async def counts(observer: asyncpg.Connection, query: str) -> set[tuple[str, str, int]]:
    return {tuple(r) for r in await observer.fetch(query)}  # type: ignore[misc]


async def test_a_delete_during_a_trigger_batch_of_the_same_user_waits_its_turn(
    pg_app: FastAPI,
    pg_client: httpx.AsyncClient,
    tokens: Tokens,
    holder: asyncpg.Connection,
    observer: asyncpg.Connection,
) -> None:
    first, second = sorted(await create_alerts(pg_client, tokens, "u1", 2), key=lambda a: a["id"])
    before = retries()
    # Hold u1's active count: the batch stops at its first status change, and the delete comes in meanwhile.
    held = holder.transaction()
    await held.start()
    await holder.execute("SELECT n FROM alerts_status_counts WHERE user_id = 'u1' AND status = 'active' FOR UPDATE")
    batch = asyncio.create_task(service_of(pg_app).record_triggers([trigger_of(first), trigger_of(second)]))
    await lock_waiters(observer, 1)
    deleted = asyncio.create_task(pg_client.delete(f"/alerts/{second['id']}", headers=tokens.headers("u1")))
    await lock_waiters(observer, 2)
    await held.commit()
    await batch
    assert (await deleted).status_code == 204
    assert retries() == before, "a transaction was aborted (deadlock) and run again"
    statuses = dict(await observer.fetch("SELECT id, status FROM alerts"))
    assert statuses == {first["id"]: "triggered", second["id"]: "deleted"}
    assert await counts(observer, KEPT) == await counts(observer, COUNTED)


async def test_a_sweep_meeting_users_in_another_order_than_a_trigger_batch_waits_its_turn(
    pg_app: FastAPI,
    pg_client: httpx.AsyncClient,
    tokens: Tokens,
    holder: asyncpg.Connection,
    observer: asyncpg.Connection,
) -> None:
    fired_1, due_1 = await create_alerts(pg_client, tokens, "u1", 2)
    fired_2, due_2 = await create_alerts(pg_client, tokens, "u2", 2)
    now = datetime.now(UTC)
    # The sweep goes by expiry time: it meets u2's alert first, the batch goes by user and takes u1's counts first.
    await observer.execute("UPDATE alerts SET expires_at = $1 WHERE id = $2", now - timedelta(seconds=20), due_2["id"])
    await observer.execute("UPDATE alerts SET expires_at = $1 WHERE id = $2", now - timedelta(seconds=10), due_1["id"])
    service, before = service_of(pg_app), retries()
    held = holder.transaction()
    await held.start()
    await holder.execute("SELECT n FROM alerts_status_counts WHERE user_id = 'u1' AND status = 'active' FOR UPDATE")
    batch = asyncio.create_task(service.record_triggers([trigger_of(fired_1), trigger_of(fired_2)]))
    await lock_waiters(observer, 1)
    sweep = asyncio.create_task(service.expire_due())
    await lock_waiters(observer, 2)
    await held.commit()
    assert (await asyncio.gather(batch, sweep))[1] == 2
    assert retries() == before, "a transaction was aborted (deadlock) and run again"
    assert (
        await counts(observer, KEPT)
        == await counts(observer, COUNTED)
        == {("u1", "triggered", 1), ("u1", "expired", 1), ("u2", "triggered", 1), ("u2", "expired", 1)}
    )


async def test_the_expiry_sweep_skips_alerts_another_writer_holds(
    pg_app: FastAPI,
    pg_client: httpx.AsyncClient,
    tokens: Tokens,
    holder: asyncpg.Connection,
    observer: asyncpg.Connection,
) -> None:
    held_alert, free_alert = (a["id"] for a in await create_alerts(pg_client, tokens, "u1", 2))
    await observer.execute("UPDATE alerts SET expires_at = $1", datetime.now(UTC) - timedelta(seconds=1))
    service = service_of(pg_app)
    async with holder.transaction():
        await holder.execute("SELECT id FROM alerts WHERE id = $1 FOR UPDATE", held_alert)
        assert await asyncio.wait_for(service.expire_due(), timeout=3) == 1
    assert await service.expire_due() == 1
    statuses = dict(await observer.fetch("SELECT id, status FROM alerts"))
    assert statuses == {held_alert: "expired", free_alert: "expired"}
    assert await counts(observer, KEPT) == await counts(observer, COUNTED) == {("u1", "expired", 2)}


async def test_a_deadlock_victim_runs_again(
    pg_app: FastAPI,
    pg_client: httpx.AsyncClient,
    tokens: Tokens,
    holder: asyncpg.Connection,
    observer: asyncpg.Connection,
) -> None:
    a, b = (alert["id"] for alert in await create_alerts(pg_client, tokens, "u1", 2))
    locked_a, rival_waits = asyncio.Event(), asyncio.Event()
    attempts = 0

    async def lock(session: AsyncSession, alert_id: str) -> None:
        await session.execute(text("SELECT id FROM alerts WHERE id = :id FOR UPDATE"), {"id": alert_id})

    async def a_then_b(session: AsyncSession) -> int:
        nonlocal attempts
        attempts += 1
        await lock(session, a)
        if attempts == 1:
            locked_a.set()
            await rival_waits.wait()
        await lock(session, b)  # the rival holds b and waits for a: Postgres aborts this side (first to check)
        return attempts

    async def b_then_a() -> None:
        await holder.execute("SET deadlock_timeout = '10s'")
        async with holder.transaction():
            await holder.execute("SELECT id FROM alerts WHERE id = $1 FOR UPDATE", b)
            await locked_a.wait()
            await holder.execute("SELECT id FROM alerts WHERE id = $1 FOR UPDATE", a)

    before = TRANSACTION_RETRIES.labels("40P01")._value.get()
    rival = asyncio.create_task(b_then_a())
    work = asyncio.create_task(run_write(sql_store_of(pg_app).sessions, a_then_b))
    await locked_a.wait()
    await lock_waiters(observer, 1)
    rival_waits.set()
    assert await work == 2
    await rival
    assert TRANSACTION_RETRIES.labels("40P01")._value.get() == before + 1


async def test_batches_sweeps_and_deletes_over_many_users_keep_exact_counts(
    pg_app: FastAPI, pg_client: httpx.AsyncClient, tokens: Tokens, observer: asyncpg.Connection
) -> None:
    alerts = [alert for user in ("u1", "u2", "u3", "u4") for alert in await create_alerts(pg_client, tokens, user, 3)]
    await observer.execute(
        "UPDATE alerts SET expires_at = $1 WHERE id = ANY($2::varchar[])",
        datetime.now(UTC) - timedelta(seconds=1),
        [a["id"] for a in alerts[::2]],
    )
    service, before = service_of(pg_app), retries()
    writers = [service.record_triggers([trigger_of(a) for a in alerts[i::3]]) for i in range(3)]
    writers += [service.record_triggers([trigger_of(a) for a in reversed(alerts)]), service.expire_due()]
    writers += [pg_client.delete(f"/alerts/{a['id']}", headers=tokens.headers(a["user_id"])) for a in alerts[::4]]
    await asyncio.gather(*writers)
    assert retries() == before
    assert await counts(observer, KEPT) == await counts(observer, COUNTED)
    assert sum(n for _, _, n in await counts(observer, KEPT)) == len(alerts)
