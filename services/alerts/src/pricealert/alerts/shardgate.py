"""The shard count check of the alerts processes: SHARDS must be the count the data in Redis was written with.

Every change stages its event for its symbol's shard's stream (outbox.py): a process on another count would
stage events where no evaluator reads. The worker and resync refuse to start on a mismatch; the API starts while
Redis is away (its readiness says so), checks once Redis answers, and on a mismatch refuses changes (503) and
stays unready.
"""

from __future__ import annotations

import asyncio

import structlog

from pricealert.common.errors import ServiceUnavailable
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient, wait_for_redis
from pricealert.common.shards import ShardCountMismatch, agree_on_shard_count

log = structlog.get_logger()

FIRST_CHECK_TIMEOUT_S = 2.0


class ShardGate:
    """Whether this process agreed on the shard count with Redis (`agreed`), or found another one (`mismatch`)."""

    def __init__(self, redis: RedisClient, count: int) -> None:
        self.redis = redis
        self.count = count
        self.agreed = False
        self.mismatch: ShardCountMismatch | None = None

    async def agree(self) -> None:
        """Record or compare the count now; raises ShardCountMismatch (and remembers it) on another count."""
        try:
            await agree_on_shard_count(self.redis, self.count)
        except ShardCountMismatch as exc:
            self.mismatch = exc
            log.error("shards.count.mismatch", shards=self.count, error=str(exc))
            raise
        self.agreed = True

    async def start(self, stop: asyncio.Event) -> asyncio.Task[None] | None:
        """Agree now if Redis answers (a mismatch raises); else check in the background until it does (the task)."""
        try:
            async with asyncio.timeout(FIRST_CHECK_TIMEOUT_S):
                await self.agree()
        except TRANSIENT_REDIS_ERRORS as exc:
            log.warning("shards.count.deferred", error=f"{type(exc).__name__}: {exc}")
            return asyncio.create_task(self.run(stop))
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for Redis, then agree (the API's background check); a mismatch is kept, not raised."""
        while not stop.is_set() and not self.agreed and self.mismatch is None:
            await wait_for_redis(self.redis, stop=stop)
            if stop.is_set():
                return
            try:
                await self.agree()
            except ShardCountMismatch:
                return
            except Exception as exc:  # Redis went away again between the ping and the check: wait for it again
                log.warning("shards.count.unchecked", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)

    def check(self) -> None:
        """Raise ServiceUnavailable (503) when the shard count disagrees with Redis's: no event may be staged."""
        if self.mismatch is not None:
            raise ServiceUnavailable(
                "Alerts cannot be changed right now; the service is misconfigured.", code="shard_count_mismatch"
            )
