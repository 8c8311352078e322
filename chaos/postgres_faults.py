"""The Postgres scenarios (issue 22): auth and alerts on a Postgres of the stack's own, the fault while alerts are
being created and the market moves. Every one wants, beyond the common oracle: each creation the fault refused
answered 503 database_unavailable with Retry-After (never a 500, never a hang), triggers and mails going on for the
alerts indexed before it, and every service recovered without a restart (no process exits)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from chaos.oracle import accepted_ids
from chaos.recurring import plan_workload
from chaos.runner import USERS, triggers_count
from chaos.scenarios import FaultContext, Scenario, Step, wall_ms
from pricealert.common.tasks import cancel_and_wait
from pricealert.devstack.ports import wait_for_port
from pricealert.devstack.servers import PostgresServer
from pricealert.testsupport.pgfaults import kill_postgres, table_locked, terminate_app_backends
from pricealert.testsupport.polling import holds_within

KILL_S = 3.0  # the crashed server stays down this long before it starts again (crash recovery)
DOWN_S = 30.0
TERMINATE_S = 5.0  # every backend terminated, again and again, for this long
TERMINATE_EVERY_S = 0.5
LOCK_S = 20.0
# The lock comes once all but this many alerts are stored: those few wait on it and are refused (each the statement
# timeout, 5 s, four at a time), then the market ramps while it still holds, so the status updates wait on it too.
LOCK_LAST = 8
READY_WITHIN_S = 30.0  # the APIs' /readyz answer 200 again this soon after the fault ended
# A fault this long holds over the market's ramps (they follow the creations): triggers must be written during it.
LONG_FAULT_S = 15.0
_before: dict[int, tuple[int, int]] = {}  # a fault's context -> (triggers written, mails accepted) when it began
COMMON = (
    "every alert answered 201 indexed and fired, each firing once and mailed once; every creation the fault refused "
    "a 503 database_unavailable with Retry-After (no 500, no hang); triggers and mails go on for the alerts indexed "
    "before it (written during a fault of 15 s or more); both APIs ready again within 30 s, statuses caught up, no "
    "service restarted"
)


def _server(ctx: FaultContext) -> PostgresServer:
    assert ctx.stack.postgres is not None, "a Postgres scenario runs its stack on Postgres"
    return ctx.stack.postgres


async def _begin(ctx: FaultContext, what: str) -> None:
    """Mark the fault's start and what the pipeline had done by then."""
    ctx.started_ms = wall_ms()
    ctx.notes.append(what)
    _before[id(ctx)] = (await triggers_count(ctx.stack), len(accepted_ids(ctx.stack.smtp)))


async def _end(ctx: FaultContext, what: str) -> None:
    """Mark the fault's end; note the triggers and mails written while Postgres was away and how long the APIs took
    to be ready again (their /readyz pings the database), with no restart; both part of the scenario's verdict."""
    ctx.ended_ms = wall_ms()
    triggers, mails = _before.pop(id(ctx), (0, 0))
    triggers, mails = await triggers_count(ctx.stack) - triggers, len(accepted_ids(ctx.stack.smtp)) - mails
    ctx.notes.append(f"{what}; while Postgres was away: {triggers} triggers written, {mails} mails accepted")
    ready_s: dict[str, float | None] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for api in ("alerts", "auth"):
            url = ctx.stack.env[f"{api.upper()}_URL"] + "/readyz"

            async def ready(url: str = url) -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return (await client.get(url)).status_code == 200
                return False

            again = await holds_within(ready, within=READY_WITHIN_S, every=0.1)
            ready_s[api] = round((wall_ms() - ctx.ended_ms) / 1000, 2) if again else None
            ctx.notes.append(f"{api} ready again after " + (f"{ready_s[api]} s" if again else "more than 30 s"))
    long_fault = ctx.started_ms is not None and ctx.ended_ms - ctx.started_ms >= LONG_FAULT_S * 1000
    figures: dict[str, Any] = {
        "triggers_while_away": triggers,
        "mails_while_away": mails,
        "apis_ready_s": ready_s,
        "apis_ready_pass": None not in ready_s.values(),
        "fired_while_away_pass": triggers > 0 or not long_fault,
    }

    async def verdict() -> dict[str, Any]:
        return figures

    ctx.verdicts.append(verdict)


async def crash(ctx: FaultContext) -> None:
    """kill -9 of the postmaster and every backend."""
    await _begin(ctx, "kill -9 of the postmaster and its backends")
    kill_postgres(_server(ctx))


async def start_again(ctx: FaultContext) -> None:
    """Start the server on its port and data directory (crash recovery first after a kill)."""
    server = _server(ctx)
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(wait_for_port, server.port)
    await _end(ctx, "Postgres started again")


async def stop(ctx: FaultContext) -> None:
    """pg_ctl stop -m fast: every session disconnected, then connections refused."""
    await _begin(ctx, "Postgres stopped (pg_ctl -m fast)")
    await asyncio.to_thread(_server(ctx).stop, mode="fast")


def repeated(step: Callable[[FaultContext], Awaitable[object]], every_s: float, what: str) -> tuple[Step, Step]:
    """A fault that runs `step` every `every_s` until recovered, and counts the rounds."""
    rounds: list[object] = []

    async def inject(ctx: FaultContext) -> None:
        rounds.clear()
        await _begin(ctx, what)

        async def again() -> None:
            while True:
                rounds.append(await step(ctx))
                await asyncio.sleep(every_s)

        ctx.task = asyncio.create_task(again())

    async def recover(ctx: FaultContext) -> None:
        assert ctx.task is not None
        await cancel_and_wait(ctx.task)
        await _end(ctx, f"{len(rounds)} rounds, {sum(int(str(n)) for n in rounds)} backends terminated")

    return inject, recover


async def terminate(ctx: FaultContext) -> int:
    """pg_terminate_backend of every connection of the services."""
    return await terminate_app_backends(_server(ctx))


async def lock_alerts(ctx: FaultContext) -> None:
    """LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE in another session, held until recovered."""
    locked = asyncio.Event()

    async def hold() -> None:
        async with table_locked(url, "alerts"):
            locked.set()
            await asyncio.Event().wait()  # until cancelled: closing the session releases the lock

    url, total = ctx.stack.env["ALERTS_DATABASE_URL"], len(plan_workload(USERS))

    async def nearly_all_stored() -> bool:
        connection = await asyncpg.connect(url)
        try:
            return int(await connection.fetchval("SELECT count(*) FROM alerts")) >= total - LOCK_LAST
        finally:
            await connection.close()

    if not await holds_within(nearly_all_stored, within=60, every=0.1):
        ctx.notes.append(f"fewer than {total - LOCK_LAST} alerts stored within 60 s")
    await _begin(ctx, f"LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE (with {LOCK_LAST} creations or fewer to come)")
    ctx.task = asyncio.create_task(hold())
    await asyncio.wait([ctx.task, asyncio.create_task(locked.wait())], return_when=asyncio.FIRST_COMPLETED)
    if ctx.task.done():
        ctx.task.result()  # the lock could not be taken: the scenario fails with why


async def unlock_alerts(ctx: FaultContext) -> None:
    """Close the session holding the lock."""
    assert ctx.task is not None
    await cancel_and_wait(ctx.task)
    await _end(ctx, "lock released")


def _scenario(name: str, what: str, inject: Step, recover: Step, fault_s: float, oracle: str) -> Scenario:
    return Scenario(
        name,
        what,
        inject,
        recover,
        fault_s,
        during="create",
        hold_down_phase=False,  # the market ramps while the fault holds: triggers must keep firing
        database="postgres",
        refusals_503=True,
        oracle=f"{oracle}; {COMMON}",
    )


POSTGRES_SCENARIOS: list[Scenario] = [
    _scenario(
        "pg-kill-9",
        f"kill -9 of Postgres (postmaster and backends) while alerts are created, restart after {KILL_S:g} s",
        crash,
        start_again,
        KILL_S,
        "crash recovery loses no committed alert or outbox event",
    ),
    _scenario(
        "pg-down-30s",
        f"Postgres stopped for {DOWN_S:g} s while alerts are created and the market moves",
        stop,
        start_again,
        DOWN_S,
        "the APIs refuse while it is down and serve again once it is up",
    ),
    _scenario(
        "pg-terminate-backends",
        f"every backend of the services terminated, every {TERMINATE_EVERY_S:g} s for {TERMINATE_S:g} s, while "
        "alerts are created",
        *repeated(terminate, TERMINATE_EVERY_S, "pg_terminate_backend of every service connection, repeatedly"),
        TERMINATE_S,
        "the pools replace the dead connections",
    ),
    _scenario(
        "pg-lock-alerts",
        f"LOCK TABLE alerts (ACCESS EXCLUSIVE) held {LOCK_S:g} s over the last {LOCK_LAST} creations and the "
        "market's ramps",
        lock_alerts,
        unlock_alerts,
        LOCK_S,
        "creations wait at most the statement timeout, then 503; the status updates wait and catch up",
    ),
]
