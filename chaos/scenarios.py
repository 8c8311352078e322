"""The faults: each one starts (inject) and ends (recover), noting when, and how many mails were in flight."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chaos.oracle import accepted_ids, read_triggers
from chaos.stack import ChaosStack
from pricealert.common import names
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS
from pricealert.common.tasks import cancel_and_wait


def wall_ms() -> float:
    """Now, in epoch milliseconds (the clock of stream entry ids and the SMTP accept log)."""
    return time.time() * 1000


@dataclass
class FaultContext:
    """What a fault needs and what it records."""

    stack: ChaosStack
    started_ms: float | None = None
    ended_ms: float | None = None
    mail_window: int = 0
    webhook_window: int = 0  # webhook deliveries in flight when the fault hit (chaos/webhooks.py)
    notes: list[str] = field(default_factory=list)
    victims: list[str] = field(default_factory=list)  # processes a fault killed, to restart when it ends
    task: asyncio.Task[None] | None = None
    # A fault's own oracle (chaos/poison.py), run after the normal one, on the running stack: its figures and a
    # `<name>_pass` that the scenario's verdict must have too.
    verdicts: list[Callable[[], Awaitable[dict[str, Any]]]] = field(default_factory=list)


Step = Callable[[FaultContext], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    """One fault under load."""

    name: str
    what: str
    inject: Step
    recover: Step
    fault_s: float = 0.0
    evaluators: int = 1
    notifiers: int = 1
    ingests: int = 1
    cluster: bool = False  # on a Redis Cluster of 3 masters + 3 replicas instead of one Redis
    # "ramp": while the market moves; "create": while alerts are being created; "swing": while the market swings
    # across the recurring alerts (chaos/recurring.py) at the end
    during: str = "ramp"
    hold_down_phase: bool = True  # wait for the fault to end before the market turns down
    webhooks: bool = False  # every user's alerts notify a webhook too (chaos/webhooks.py), judged by its oracle
    oracle: str = ""  # what its oracle wants beyond the common one (chaos/report.py), in a sentence
    mail_server: str = "aiosmtpd"  # or "postfix": chaos/postfix_faults.py (ChaosStack.mail_server)
    refused_recipients: tuple[str, ...] = ()  # with Postfix: recipients it rejects (ChaosStack.refused_recipients)
    proxies: tuple[str, ...] = ()  # "redis", "smtp": the services reach them through a ChaosProxy (chaos/slowness.py)
    database: str = "sqlite"  # what auth and alerts run on: "sqlite" or "postgres" (a server of the stack's own)
    # "create" only: every creation the fault refused must be a 503 database_unavailable with Retry-After
    refusals_503: bool = False


async def in_flight(stack: ChaosStack) -> tuple[set[str], set[str]]:
    """(triggers leased or accepted but not yet recorded as sent, every accepted trigger id)."""
    accepted = set(accepted_ids(stack.smtp))
    shard_of_trigger = {t["trigger_id"]: int(t["shard"]) for t in await read_triggers(stack.redis, stack.shards)}
    leased: set[str] = set()
    for shard in range(stack.shards):  # a trigger's lease and sent mark live in its symbol's shard
        prefix = names.notifier_lease_key(shard, "")
        async for key in stack.redis.scan_iter(match=names.notifier_lease_key(shard, "*"), count=1000):
            trigger_id = key.decode().removeprefix(prefix)  # a recurring firing's id has a colon
            if "@" in trigger_id:  # another channel's delivery `<trigger id>@<channel id>`: webhooks_in_flight's
                continue
            leased.add(trigger_id)
            shard_of_trigger[trigger_id] = shard
    unsent = set()
    for trigger_id in sorted(accepted | leased):
        known = shard_of_trigger.get(trigger_id)
        where = range(stack.shards) if known is None else (known,)  # mailed, yet in no stream: look everywhere
        if not any([await stack.redis.exists(names.notifier_sent_key(k, trigger_id)) for k in where]):
            unsent.add(trigger_id)
    return unsent, accepted


async def noop(ctx: FaultContext) -> None:
    """No fault (the baseline)."""
    ctx.started_ms = ctx.started_ms or wall_ms()
    ctx.ended_ms = wall_ms()


def kill(process: str, *, mails: bool = False) -> Step:
    """SIGKILL `process`; with `mails`, count the mails it had in flight."""

    async def inject(ctx: FaultContext) -> None:
        ctx.started_ms = wall_ms()
        ctx.stack.kill(process)
        if mails:
            await asyncio.sleep(0.2)  # the SMTP server finishes any DATA that arrived before the kill
            ctx.mail_window = len((await in_flight(ctx.stack))[0])
        ctx.notes.append(f"SIGKILL {process}")

    return inject


def restart(process: str) -> Step:
    """Start `process` again with the same consumer name."""

    async def recover(ctx: FaultContext) -> None:
        ctx.stack.start_process(process)
        ctx.ended_ms = wall_ms()
        ready = (
            await ctx.stack.wait_worker(process, int(ctx.ended_ms), within=30)
            if process not in ("alerts", "auth", "gateway")
            else True
        )
        ctx.notes.append(f"restarted {process}" + ("" if ready else " (no heartbeat within 30 s)"))

    return recover


async def redis_kill(ctx: FaultContext) -> None:
    """kill -9 of redis-server (AOF on, appendfsync everysec)."""
    before, accepted = await in_flight(ctx.stack)
    ctx.started_ms = wall_ms()
    assert ctx.stack.redis_server is not None, "redis-restart runs on one Redis"
    await asyncio.to_thread(ctx.stack.redis_server.stop, kill=True)
    await asyncio.sleep(0.2)
    ctx.mail_window = len(before | (set(accepted_ids(ctx.stack.smtp)) - accepted))
    ctx.notes.append("redis-server SIGKILL")


async def redis_start(ctx: FaultContext) -> None:
    """Start redis-server again on the same port and data directory."""
    assert ctx.stack.redis_server is not None, "redis-restart runs on one Redis"
    await asyncio.to_thread(ctx.stack.redis_server.start)
    ctx.ended_ms = wall_ms()
    ctx.notes.append("redis-server restarted (AOF replayed)")


async def smtp_down(ctx: FaultContext) -> None:
    """Stop the SMTP server: connections refused."""
    ctx.started_ms = wall_ms()
    await asyncio.to_thread(ctx.stack.smtp.stop)
    with contextlib.suppress(*TRANSIENT_REDIS_ERRORS):
        ctx.mail_window = len((await in_flight(ctx.stack))[0])


async def smtp_up(ctx: FaultContext) -> None:
    """Start the SMTP server again on the same port."""
    await asyncio.to_thread(ctx.stack.smtp.start)
    ctx.ended_ms = wall_ms()


def pause(process: str, *, mails: bool = False) -> Step:
    """SIGSTOP `process` (its pending entries go idle past the reclaim time)."""

    async def inject(ctx: FaultContext) -> None:
        ctx.started_ms = wall_ms()
        ctx.stack.pause(process, True)
        if mails:
            ctx.mail_window = len((await in_flight(ctx.stack))[0])
        ctx.notes.append(f"SIGSTOP {process}")

    return inject


def resume(process: str) -> Step:
    """SIGCONT `process`."""

    async def recover(ctx: FaultContext) -> None:
        ctx.stack.pause(process, False)
        ctx.ended_ms = wall_ms()

    return recover


async def silent(ctx: FaultContext) -> None:
    """The exchange stops sending anything without closing its connections."""
    ctx.started_ms = wall_ms()
    ctx.stack.exchange.go_silent(True)


async def talkative(ctx: FaultContext) -> None:
    """The exchange sends again (ingest's watchdog should have replaced the connections meanwhile)."""
    ctx.stack.exchange.go_silent(False)
    ctx.ended_ms = wall_ms()


async def drop(ctx: FaultContext) -> None:
    """Abort every exchange connection (no close frame)."""
    ctx.started_ms = wall_ms()
    ctx.notes.append(f"dropped {ctx.stack.exchange.drop_connections(abrupt=True)} connections")


async def garbage(ctx: FaultContext) -> None:
    """Send malformed frames on every connection, twice a second until recovered."""
    ctx.started_ms = wall_ms()

    async def spray() -> None:
        while True:
            ctx.stack.exchange.send_garbage()
            await asyncio.sleep(0.5)

    ctx.task = asyncio.create_task(spray())


async def stop_garbage(ctx: FaultContext) -> None:
    """Stop the garbage."""
    if ctx.task is not None:
        await cancel_and_wait(ctx.task)
    ctx.ended_ms = wall_ms()


SCENARIOS: list[Scenario] = [
    Scenario("baseline", "no fault: the oracle's control run", noop, noop),
    Scenario("kill-ingest", "SIGKILL ingest, restart after 2 s", kill("ingest-1"), restart("ingest-1"), 2.0),
    Scenario(
        "kill-evaluator", "SIGKILL the evaluator, restart after 2 s", kill("evaluator-1"), restart("evaluator-1"), 2.0
    ),
    Scenario(
        "kill-notifier",
        "SIGKILL the notifier during a burst of mails, restart after 2 s",
        kill("notifier-1", mails=True),
        restart("notifier-1"),
        2.0,
    ),
    Scenario(
        "kill-evaluator-swing",
        "SIGKILL the evaluator while recurring alerts fire (the market's swings), restart after 2 s",
        kill("evaluator-1"),
        restart("evaluator-1"),
        2.0,
        during="swing",
    ),
    Scenario(
        "kill-notifier-swing",
        "SIGKILL the notifier while recurring alerts' mails go out (the market's swings), restart after 2 s",
        kill("notifier-1", mails=True),
        restart("notifier-1"),
        2.0,
        during="swing",
    ),
    Scenario(
        "kill-alerts-api",
        "SIGKILL the alerts API while alerts are being created, restart after 2 s",
        kill("alerts"),
        restart("alerts"),
        2.0,
        during="create",
    ),
    Scenario(
        "kill-alerts-worker",
        "SIGKILL the alerts worker (relay, consumers, sweeper) while alerts are being created, restart after 2 s",
        kill("alerts-worker"),
        restart("alerts-worker"),
        2.0,
        during="create",
    ),
    Scenario(
        "redis-restart",
        "kill -9 redis-server (AOF everysec), restart on the same port/dir after 2 s",
        redis_kill,
        redis_start,
        2.0,
    ),
    Scenario("exchange-silent", "the exchange goes silent (connections open) for 6 s", silent, talkative, 6.0),
    Scenario("exchange-drop", "the exchange aborts every connection", drop, noop),
    Scenario("exchange-garbage", "the exchange sends malformed frames for 3 s", garbage, stop_garbage, 3.0),
    Scenario(
        "sigstop-evaluator",
        "SIGSTOP one of 2 evaluator replicas for 6 s (reclaim idle 2 s)",
        pause("evaluator-1"),
        resume("evaluator-1"),
        6.0,
        evaluators=2,
    ),
    Scenario(
        "sigstop-notifier",
        "SIGSTOP one of 2 notifier replicas for 12 s (reclaim idle 2 s, lease 10 s)",
        pause("notifier-1", mails=True),
        resume("notifier-1"),
        12.0,
        notifiers=2,
    ),
    Scenario("smtp-down-60s", "the SMTP server is down for 60 s", smtp_down, smtp_up, 60.0, hold_down_phase=False),
]


async def run_fault(scenario: Scenario, ctx: FaultContext, delay: float = 0.0) -> None:
    """Inject the fault after `delay`, hold it for its duration, recover."""
    await asyncio.sleep(delay)
    await scenario.inject(ctx)
    await asyncio.sleep(scenario.fault_s)
    await scenario.recover(ctx)
