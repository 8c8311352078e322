"""A worker's heartbeat: the TTL'd key compose health checks and `pricealert health` read."""

from __future__ import annotations

import asyncio
import contextlib

from pricealert.common import names
from pricealert.common.events import now_ms
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient

HEALTH_TTL_S = 30


async def beat(redis: RedisClient, service: str, consumer: str, ttl_s: int = HEALTH_TTL_S) -> None:
    """Write this replica's heartbeat (now, in ms), valid for `ttl_s`."""
    await redis.set(names.health_key(service, consumer), str(now_ms()), ex=ttl_s)


async def keep_beating(redis: RedisClient, service: str, consumer: str, stop: asyncio.Event) -> None:
    """Beat every few seconds until `stop`, for a worker whose loops have no consumer to beat for them."""
    while not stop.is_set():
        with contextlib.suppress(*TRANSIENT_REDIS_ERRORS):
            await beat(redis, service, consumer)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=HEALTH_TTL_S / 6)
