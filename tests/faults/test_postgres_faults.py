"""Postgres under fault, under load: kill -9, stopped for 30 s, every backend terminated, the alerts table locked.

Meanwhile the APIs answer 503 database_unavailable with Retry-After, never 500 and never later than BOUND_S; after,
they serve again without a restart; no acknowledged alert, registration or outbox event is lost; and alerts
indexed before the fault fire during it, their firings recorded once the database is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from pgfaults_testkit import (
    BOUND_S,
    Answer,
    Stack,
    crash,
    dead_letters,
    fired,
    indexed,
    lost_registrations,
    relayed_ids,
    restart,
    stack_on,
    tick,
)

from pricealert.devstack.servers import PostgresServer
from pricealert.testsupport.pgfaults import table_locked, terminate_app_backends
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.timeout(150)
SERVED = {200, 201, 202}
RECOVERY_S = 15.0


def wrong(answers: list[Answer]) -> list[Answer]:
    """Answers that are neither served nor a proper 503 database_unavailable with Retry-After (hangs included)."""
    return [
        a
        for a in answers
        if a.status not in SERVED
        and (a.status, a.code, a.retry_after is not None) != (503, "database_unavailable", True)
    ]


@asynccontextmanager
async def killed(server: PostgresServer, down_s: float) -> AsyncIterator[None]:
    """kill -9 of Postgres, restarted `down_s` later."""
    await crash(server)
    started = time.monotonic()
    yield
    await asyncio.sleep(max(0.0, down_s - (time.monotonic() - started)))
    await restart(server)


@asynccontextmanager
async def stopped(server: PostgresServer, down_s: float) -> AsyncIterator[None]:
    """pg_ctl stop -m fast, started again `down_s` later."""
    await asyncio.to_thread(server.stop, mode="fast")
    started = time.monotonic()
    yield
    await asyncio.sleep(max(0.0, down_s - (time.monotonic() - started)))
    await restart(server)


@asynccontextmanager
async def terminated(server: PostgresServer) -> AsyncIterator[None]:
    """Every connection of the services terminated by the server, once."""
    assert await terminate_app_backends(server) > 0
    yield


@asynccontextmanager
async def locked(server: PostgresServer, held_s: float) -> AsyncIterator[None]:
    """ACCESS EXCLUSIVE on the alerts table for `held_s` in another session."""
    async with table_locked(server.url("alerts"), "alerts"):
        started = time.monotonic()
        yield
        await asyncio.sleep(max(0.0, held_s - (time.monotonic() - started)))


async def served_again(stack: Stack) -> bool:
    """Whether a create, a listing and a registration are all served."""
    return (
        (await stack.create()).status_code == 201
        and (await stack.list_page()).status_code == 200
        and (await stack.register()).status_code == 202
    )


async def under(stack: Stack, fault: Callable[[], AbstractAsyncContextManager[None]], *, felt: bool) -> None:
    """Run `fault` under load and check every promise; `felt`: requests must have met it (503s seen)."""
    watched = {(await stack.create("50000")).json()["id"] for _ in range(3)}
    await eventually(lambda: indexed(stack.redis), within=20, what="the evaluator indexed the watched alerts")

    async def fired_all() -> bool:
        return watched <= await fired(stack.redis)

    stop = asyncio.Event()
    loading = asyncio.create_task(stack.load(stop))
    await asyncio.sleep(1.0)
    began = time.monotonic()
    async with fault():
        await tick(stack.redis, "60000", 1)
        await eventually(fired_all, within=10, what="the watched alerts fired during the fault")
    ended = time.monotonic()
    try:
        await eventually(lambda: served_again(stack), within=RECOVERY_S, every=0.2, what="served again")
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await loading
    during = [a for a in stack.since(began) if a.at < ended]
    assert not wrong(stack.answers), wrong(stack.answers)[:10]
    assert max(a.elapsed_s for a in stack.answers) < BOUND_S
    if felt:
        assert any(a.status == 503 for a in during), "the fault was not felt"

    async def recorded() -> bool:
        """Each watched alert triggered, its one firing counted once."""
        seen = set()
        for alert_id in watched:
            answer = await stack.call("get", stack.alerts, "GET", f"/alerts/{alert_id}", headers=stack.headers)
            body = answer.json()
            seen.add((body["status"], body["firing_count"]) if answer.status_code == 200 else answer.status_code)
        return seen == {("triggered", 1)}

    await eventually(recorded, within=15, every=0.2, what="the firings recorded")
    await eventually(lambda: _all_relayed(stack), within=15, every=0.2, what="every acknowledged alert's event relayed")
    for alert_id in stack.created:
        answer = await stack.call("get", stack.alerts, "GET", f"/alerts/{alert_id}", headers=stack.headers)
        assert answer.status_code == 200, (alert_id, answer.text)
    assert await lost_registrations(stack) == []
    assert await dead_letters(stack.redis) == 0


async def _all_relayed(stack: Stack) -> bool:
    return set(stack.created) <= await relayed_ids(stack.redis)


@pytest.fixture
async def stack(postgres_server: PostgresServer, redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The services on this test's own Postgres."""
    async with stack_on(postgres_server, redis_url, tmp_path) as running:
        yield running


async def test_kill_9_mid_load(stack: Stack) -> None:
    await under(stack, lambda: killed(stack.server, 3.0), felt=True)


async def test_stopped_for_30_s(stack: Stack) -> None:
    await under(stack, lambda: stopped(stack.server, 30.0), felt=True)


async def test_every_backend_terminated(stack: Stack) -> None:
    await under(stack, lambda: terminated(stack.server), felt=False)


async def test_alerts_table_locked_for_20_s(stack: Stack) -> None:
    await under(stack, lambda: locked(stack.server, 20.0), felt=True)
