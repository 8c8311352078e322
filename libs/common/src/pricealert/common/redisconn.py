"""Redis connections with timeouts that suit blocking stream reads, and waiting for Redis to appear."""

from __future__ import annotations

import asyncio
import random

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger()

# Blocking reads use BLOCK of at most this many ms; the socket timeout must stay clearly larger
# (redis-py 8 defaults to a 5 s socket timeout, which kills longer blocking reads).
MAX_BLOCK_MS = 2_000
SOCKET_TIMEOUT_S = 10.0

TRANSIENT_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def connect(url: str) -> Redis:
    """A Redis client for `url`; nothing is sent until first use."""
    return Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=30,
        decode_responses=False,
    )


async def wait_for_redis(redis: Redis, *, stop: asyncio.Event | None = None, max_delay: float = 5.0) -> None:
    """Ping until Redis answers, backing off with jitter; returns early if `stop` is set."""
    delay = 0.1
    while True:
        try:
            await redis.ping()
            return
        except TRANSIENT_REDIS_ERRORS as exc:
            log.warning("redis.unavailable", error=str(exc), retry_in=round(delay, 2))
        pause = delay * random.uniform(0.5, 1.0)
        if stop is None:
            await asyncio.sleep(pause)
        else:
            try:
                await asyncio.wait_for(stop.wait(), timeout=pause)
                return
            except TimeoutError:
                pass
        delay = min(delay * 2, max_delay)
