"""Which shards this replica works: an expiring lease per shard in Redis, a fair share of the live replicas each.

Every replica of a service (evaluator, ingest) beats into the service's members set and holds leases
(`names.shard_owner_key`) on at most ceil(shards / live replicas) shards; it renews them every `interval_s`,
gives extras back when a replica joins, and takes free ones (a dead owner's lapse after `lease_ms`). The lease
key lives in its shard's slot, so the scripts that act on a shard check the token in the same atomic step
(fencing): a replica paused past its lease cannot write after the new owner took over.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from pricealert.common import names
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.common.scripts import lua

log = structlog.get_logger()

DEFAULT_LEASE_MS = 10_000
DEFAULT_INTERVAL_S = 2.0

# Runs one owned shard's loops until the event is set; returning early (or raising) gives the shard up.
ShardWork = Callable[[int, asyncio.Event], Coroutine[Any, Any, None]]


class ShardLeaseLost(Exception):
    """A shard's lease is another replica's now: stop working it (raised by fenced scripts' callers)."""


def now_ms() -> int:
    """Wall-clock milliseconds (member beats are compared across hosts)."""
    return int(time.time() * 1000)


class ShardOwnership:
    """This replica's leases on the shards of `service`; `run` starts and stops a ShardWork per owned shard."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        service: str,
        consumer: str,
        count: int,
        lease_ms: int = DEFAULT_LEASE_MS,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        if interval_s * 1000 * 2 >= lease_ms:
            raise ValueError("the lease must outlast two renewal intervals")
        self.redis = redis
        self.service = service
        self.count = count
        self.lease_ms = lease_ms
        self.interval_s = interval_s
        # Unique per process: two replicas started by mistake under one name still split the shards and fence
        # each other (a crashed replica's leases lapse after lease_ms; a clean stop gives them back at once).
        self.token = f"{consumer}:{uuid.uuid4().hex[:12]}"
        self.owned: set[int] = set()
        self._renewed_at: dict[int, float] = {}  # monotonic time of each owned lease's last renewal
        self._renew = redis.register_script(lua("pricealert.common", "renew_shard"))
        self._release = redis.register_script(lua("pricealert.common", "release_shard"))
        self._log = log.bind(service=service, token=self.token)

    def owner_key(self, shard: int) -> str:
        """The lease key of `shard` for this service."""
        return names.shard_owner_key(self.service, shard)

    async def fair_share(self) -> int:
        """Beat into the members set, drop members silent for a lease, and return ceil(shards / live members)."""
        key, now = names.members_key(self.service), now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {self.token: now})
            pipe.zremrangebyscore(key, "-inf", now - self.lease_ms)
            pipe.zcard(key)
            replies = await pipe.execute()
        return math.ceil(self.count / max(1, int(replies[2])))

    async def renew(self) -> set[int]:
        """Renew every owned lease; returns the shards lost: another replica's now, or unreachable for a lease.

        Each shard on its own: a master failing over delays its shards' renewals, not the other masters' shards.
        """
        shards = sorted(self.owned)
        replies = await asyncio.gather(
            *(self._renew(keys=[self.owner_key(shard)], args=[self.token, self.lease_ms]) for shard in shards),
            return_exceptions=True,
        )
        lost, now = set(), time.monotonic()
        for shard, reply in zip(shards, replies, strict=True):
            if isinstance(reply, TRANSIENT_REDIS_ERRORS):
                # Unknown: the lease may still be ours until it would have lapsed since the last renewal.
                if now - self._renewed_at.get(shard, now) >= self.lease_ms / 1000 - self.interval_s:
                    lost.add(shard)
            elif isinstance(reply, BaseException):
                raise reply
            elif reply:
                self._renewed_at[shard] = now
            else:
                lost.add(shard)
        return lost

    async def try_take(self, wanted: int) -> set[int]:
        """Take up to `wanted` free shards, starting at a point of the ring fixed by this token (spreads replicas)."""
        taken: set[int] = set()
        start = zlib.crc32(self.token.encode()) % self.count
        for step in range(self.count):
            if len(taken) >= wanted:
                break
            shard = (start + step) % self.count
            if shard in self.owned:
                continue
            try:
                if await self.redis.set(self.owner_key(shard), self.token, nx=True, px=self.lease_ms):
                    taken.add(shard)
                    self._renewed_at[shard] = time.monotonic()
            except TRANSIENT_REDIS_ERRORS as exc:  # that shard's master is away: try the others
                self._log.warning("shard.take.failed", shard=shard, error=str(exc))
        return taken

    async def release(self, shard: int) -> None:
        """Give `shard`'s lease up (if still ours), so the next replica takes it at once instead of after a lease."""
        await self._release(keys=[self.owner_key(shard)], args=[self.token])

    async def leave(self) -> None:
        """Leave the members set (a clean stop): the others' fair share grows at their next step."""
        await self.redis.zrem(names.members_key(self.service), self.token)

    async def run(self, stop: asyncio.Event, work: ShardWork, *, take_until: asyncio.Event | None = None) -> None:
        """Hold leases until `stop` is set, running `work` for each owned shard; give every lease up at the end.

        Once `take_until` is set (a replica shutting down that holds its leases a while longer) no shard is taken.
        """
        running: dict[int, tuple[asyncio.Task[None], asyncio.Event]] = {}

        async def end(shard: int, *, lost: bool) -> None:
            task, shard_stop = running.pop(shard)
            shard_stop.set()
            await asyncio.gather(task, return_exceptions=True)
            self.owned.discard(shard)
            self._renewed_at.pop(shard, None)
            # Even a lost one: a renewal may have written our token back meanwhile (the script deletes only ours).
            await self.release(shard)
            self._log.info("shard.lost" if lost else "shard.released", shard=shard)

        try:
            while not stop.is_set():
                try:
                    await self._step(running, end, work, taking=take_until is None or not take_until.is_set())
                except TRANSIENT_REDIS_ERRORS as exc:
                    self._log.warning("shard.lease.unavailable", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
        finally:
            for _, shard_stop in running.values():
                shard_stop.set()
            try:
                # All at once: each shard's loops finish their blocking read first (a second or so each).
                await asyncio.gather(*(end(shard, lost=False) for shard in list(running)))
                await self.leave()
            except TRANSIENT_REDIS_ERRORS as exc:  # the leases lapse by themselves
                self._log.warning("shard.release.failed", error=str(exc))

    async def _step(
        self,
        running: dict[int, tuple[asyncio.Task[None], asyncio.Event]],
        end: Callable[..., Awaitable[None]],
        work: ShardWork,
        *,
        taking: bool,
    ) -> None:
        # A shard whose work ended by itself: a lost lease (fenced script) or a failure, re-raised here.
        for shard, (task, _) in list(running.items()):
            if task.done():
                failure = None if task.cancelled() else task.exception()
                await end(shard, lost=isinstance(failure, ShardLeaseLost))
                if failure is not None and not isinstance(failure, ShardLeaseLost):
                    raise failure
        # Shards end concurrently: one by one, their loops' blocking reads would hold up the renewals past a lease.
        await asyncio.gather(*(end(shard, lost=True) for shard in await self.renew()))
        share = await self.fair_share()
        # Highest shards first: deterministic, so two replicas do not give the same shards back and forth.
        extra = sorted(self.owned, reverse=True)[: max(0, len(self.owned) - share)]
        await asyncio.gather(*(end(shard, lost=False) for shard in extra))
        if not taking:
            return
        for shard in sorted(await self.try_take(share - len(self.owned))):
            self.owned.add(shard)
            shard_stop = asyncio.Event()
            running[shard] = (asyncio.create_task(work(shard, shard_stop)), shard_stop)
            self._log.info("shard.taken", shard=shard)
