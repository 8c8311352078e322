"""Slowness, not just death (issue 22): latency and resets between every service and Redis, a slow throttled line
to SMTP (both through chaos/proxy.py), and Redis at maxmemory with noeviction (writes refused with OOM)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from redis.exceptions import OutOfMemoryError

from chaos.proxy import ChaosProxy, ProxyThread
from chaos.scenarios import FaultContext, Scenario, Step, in_flight, wall_ms
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS
from pricealert.common.tasks import cancel_and_wait

RESETS = 5  # redis-resets: every service's Redis connections reset this many times,
RESET_EVERY_S = 3.0  # this far apart
SMTP_DELAY_S = 0.3
SMTP_RATE_BPS = 4096.0
HEADROOM_BYTES = 512 * 1024  # redis-maxmemory: the limit, this far above the memory in use when the fault begins,
BALLAST_CHUNK = 16 * 1024  # filled by a ballast key in chunks this large
BALLAST = "chaos:ballast"


def _proxy(ctx: FaultContext, which: str) -> ProxyThread:
    proxy = ctx.stack.redis_proxy if which == "redis" else ctx.stack.smtp_proxy
    assert proxy is not None, f"the scenario asks for the {which} proxy"
    return proxy


def slow(which: str, latency_s: float, jitter_s: float = 0.0, rate_bps: float = 0.0) -> Step:
    """Every chunk through the `which` proxy waits latency ± jitter; at most `rate_bps` (0: no throttle)."""

    async def inject(ctx: FaultContext) -> None:
        def cue(proxy: ChaosProxy) -> None:
            proxy.delay(latency_s, jitter_s)
            proxy.throttle(rate_bps)

        ctx.started_ms = wall_ms()
        await _proxy(ctx, which).run(cue)
        ctx.notes.append(
            f"{which} proxy: +{latency_s * 1000:g} ± {jitter_s * 1000:g} ms per chunk each way"
            + (f", {rate_bps:g} B/s" if rate_bps else "")
        )

    return inject


def normal(which: str) -> Step:
    """The `which` proxy passes everything straight on again."""

    async def recover(ctx: FaultContext) -> None:
        await _proxy(ctx, which).run(ChaosProxy.normal)
        ctx.ended_ms = wall_ms()

    return recover


async def resets(ctx: FaultContext) -> None:
    """Reset (RST) every service's Redis connection, RESETS times, counting the mails in flight at each."""
    ctx.started_ms = wall_ms()
    proxy = _proxy(ctx, "redis")
    for n in range(RESETS):
        if n:
            await asyncio.sleep(RESET_EVERY_S)
        dropped = await proxy.run(ChaosProxy.reset_all)
        with contextlib.suppress(*TRANSIENT_REDIS_ERRORS):
            ctx.mail_window += len((await in_flight(ctx.stack))[0])
        ctx.notes.append(f"reset {dropped} connections")


async def resets_over(ctx: FaultContext) -> None:
    """The resets are over."""
    ctx.ended_ms = wall_ms()


async def maxmemory(ctx: FaultContext) -> None:
    """maxmemory just above the memory in use, noeviction, and a ballast key kept filling what is left: every write
    is refused with OOM. Then the APIs are asked for what needs a write (a login's rate limit, a registration)."""
    redis = ctx.stack.redis
    used = int((await redis.info("memory"))["used_memory"])
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", str(used + HEADROOM_BYTES))
    ctx.started_ms = wall_ms()
    refused = await _fill(ctx)

    async def keep_full() -> None:  # what the services free (acks, trims) is taken again at once
        while True:
            await asyncio.sleep(0.1)
            await _fill(ctx)

    ctx.task = asyncio.create_task(keep_full())
    with contextlib.suppress(*TRANSIENT_REDIS_ERRORS):
        ctx.mail_window = len((await in_flight(ctx.stack))[0])
    ctx.notes.append(f"maxmemory {used + HEADROOM_BYTES} (used {used} before) noeviction; writes refused: {refused}")
    async with httpx.AsyncClient(base_url=ctx.stack.url, timeout=10) as client:
        probes = {
            "login": await client.post("/auth/login", json={"email": "chaos0@example.com", "password": "wrong-one"}),
            "register": await client.post("/auth/register", json={"email": "oom@example.com", "password": "x" * 14}),
        }
    for what, answer in probes.items():
        code = answer.json().get("error", {}).get("code") if answer.status_code >= 400 else ""
        ctx.notes.append(f"{what}: {answer.status_code} {code} Retry-After={answer.headers.get('retry-after')}")
        if answer.status_code >= 500 and answer.status_code != 503:
            ctx.stack.api_errors.append(f"{what} under OOM: {answer.status_code} {answer.text[:200]}")


async def _fill(ctx: FaultContext) -> bool:
    """Append to a ballast key until Redis refuses it (OOM); whether it did."""
    for _ in range(HEADROOM_BYTES // BALLAST_CHUNK + 64):
        try:
            await ctx.stack.redis.append(BALLAST, b"x" * BALLAST_CHUNK)
        except OutOfMemoryError:
            return True
    return False


async def memory_freed(ctx: FaultContext) -> None:
    """The ballast deleted and the limit lifted (as an operator would): writes are accepted again."""
    if ctx.task is not None:
        await cancel_and_wait(ctx.task)
    await ctx.stack.redis.delete(BALLAST)
    await ctx.stack.redis.config_set("maxmemory", "0")
    ctx.ended_ms = wall_ms()


SLOWNESS_SCENARIOS: list[Scenario] = [
    Scenario(
        "redis-latency",
        "every service <-> Redis: +5 ms ± 5 ms per chunk each way for 20 s (a proxy)",
        slow("redis", 0.005, 0.005),
        normal("redis"),
        20.0,
        proxies=("redis",),
    ),
    Scenario(
        "redis-resets",
        f"every service <-> Redis connection reset (RST) {RESETS} times, {RESET_EVERY_S:g} s apart (a proxy)",
        resets,
        resets_over,
        proxies=("redis",),
    ),
    Scenario(
        "smtp-slow",
        f"notifier <-> SMTP: +{SMTP_DELAY_S * 1000:g} ms per chunk each way and {SMTP_RATE_BPS:g} B/s for 20 s",
        slow("smtp", SMTP_DELAY_S, 0.0, SMTP_RATE_BPS),
        normal("smtp"),
        20.0,
        proxies=("smtp",),
    ),
    Scenario(
        "redis-maxmemory",
        "Redis maxmemory just above the memory in use, noeviction (writes refused: OOM) for 20 s, then lifted",
        maxmemory,
        memory_freed,
        20.0,
    ),
]
