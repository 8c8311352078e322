"""Shard leases (ownership.py) on a real Redis and a real 3-master cluster: fair split, takeover, release, rebalance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.ownership import ShardLeaseLost, ShardOwnership
from pricealert.common.redisconn import RedisClient
from pricealert.testsupport.polling import eventually

SERVICE = "evaluator"
COUNT = 16
LEASE_MS = 1500
INTERVAL_S = 0.3
# A loaded machine (2 cores, several test runs) may be late by this much on top of a lease and an interval.
SLACK_S = 1.5


class Crashing(ShardOwnership):
    """A replica that dies: on stop it neither releases its leases nor leaves the members set (a kill -9)."""

    async def release(self, shard: int) -> None:
        """Nothing: the lease stays until it lapses."""

    async def leave(self) -> None:
        """Nothing: the beat stays until it is a lease old."""


@dataclass
class Workers:
    """Which replica runs which shard's work now; fails the test if two ever run one shard at once."""

    running: dict[int, str] = field(default_factory=dict)
    overlaps: list[int] = field(default_factory=list)
    started: list[tuple[str, int]] = field(default_factory=list)

    def work_of(self, name: str) -> Callable[[int, asyncio.Event], object]:
        async def work(shard: int, shard_stop: asyncio.Event) -> None:
            if shard in self.running:
                self.overlaps.append(shard)
            self.running[shard] = name
            self.started.append((name, shard))
            try:
                await shard_stop.wait()
            finally:
                if self.running.get(shard) == name:
                    del self.running[shard]

        return work


@dataclass
class Replica:
    """One ShardOwnership running in a task, with its own stop event."""

    ownership: ShardOwnership
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def halt(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


@asynccontextmanager
async def cluster_of_replicas(redis: RedisClient, workers: Workers) -> AsyncIterator[Callable[..., Replica]]:
    """Start replicas with `start(name)`; every one still running is stopped at the end."""
    replicas: list[Replica] = []

    def start(name: str, kind: type[ShardOwnership] = ShardOwnership) -> Replica:
        ownership = kind(redis, service=SERVICE, consumer=name, count=COUNT, lease_ms=LEASE_MS, interval_s=INTERVAL_S)
        stop = asyncio.Event()
        replica = Replica(ownership, stop, asyncio.create_task(ownership.run(stop, workers.work_of(name))))  # type: ignore[arg-type]
        replicas.append(replica)
        return replica

    try:
        yield start
    finally:
        for replica in replicas:
            replica.stop.set()
        await asyncio.gather(*(r.task for r in replicas), return_exceptions=True)
    assert workers.overlaps == [], f"two replicas worked shards {workers.overlaps} at once"


async def holders(redis: RedisClient) -> dict[int, str | None]:
    """The token in each shard's lease key."""
    values = [await redis.get(names.shard_owner_key(SERVICE, k)) for k in range(COUNT)]
    return {k: None if v is None else v.decode() for k, v in enumerate(values)}


def owns(replica: Replica, count: int) -> Callable[[], bool]:
    return lambda: len(replica.ownership.owned) == count


async def _split_and_rebalance(redis: RedisClient) -> None:
    workers = Workers()
    async with cluster_of_replicas(redis, workers) as start:
        first = start("evaluator-1")
        await eventually(owns(first, COUNT), within=5, what="one replica holding every shard", alive=first.task)
        second = start("evaluator-2")
        await eventually(
            lambda: owns(first, 8)() and owns(second, 8)(), within=10, what="a 8/8 split", alive=second.task
        )
        assert first.ownership.owned.isdisjoint(second.ownership.owned)
        by_key = await holders(redis)
        assert {k for k, t in by_key.items() if t == first.ownership.token} == first.ownership.owned
        assert {k for k, t in by_key.items() if t == second.ownership.token} == second.ownership.owned
        assert sorted(workers.running) == list(range(COUNT))
        await asyncio.sleep(3 * INTERVAL_S)  # stable: nobody gives shards back and forth
        assert len(first.ownership.owned) == len(second.ownership.owned) == 8


async def test_two_replicas_split_the_shards_and_a_joining_one_rebalances(redis: Redis) -> None:
    await _split_and_rebalance(redis)


async def test_the_split_and_rebalance_on_a_cluster(redis_cluster: RedisClient) -> None:
    await _split_and_rebalance(redis_cluster)


async def _takeover_after_a_crash(redis: RedisClient) -> None:
    workers = Workers()
    async with cluster_of_replicas(redis, workers) as start:
        dying, survivor = start("evaluator-1", Crashing), start("evaluator-2")
        await eventually(lambda: owns(dying, 8)() and owns(survivor, 8)(), within=10, what="a 8/8 split")
        lost = set(dying.ownership.owned)
        await dying.halt()
        crashed_at = time.monotonic()
        assert set((await holders(redis)).values()) >= {dying.ownership.token}  # its leases stay behind

        await eventually(owns(survivor, COUNT), within=LEASE_MS / 1000 + INTERVAL_S + SLACK_S, what="the takeover")
        took = time.monotonic() - crashed_at
        assert took <= LEASE_MS / 1000 + 2 * INTERVAL_S + SLACK_S
        assert set((await holders(redis)).values()) == {survivor.ownership.token}
        assert {shard for name, shard in workers.started if name == "evaluator-2"} >= lost


async def test_a_dead_replicas_shards_are_taken_within_a_lease_and_an_interval(redis: Redis) -> None:
    await _takeover_after_a_crash(redis)


async def test_a_dead_replicas_shards_are_taken_on_a_cluster(redis_cluster: RedisClient) -> None:
    await _takeover_after_a_crash(redis_cluster)


async def test_a_clean_stop_releases_at_once(redis: Redis) -> None:
    workers = Workers()
    async with cluster_of_replicas(redis, workers) as start:
        leaving, staying = start("evaluator-1"), start("evaluator-2")
        await eventually(lambda: owns(leaving, 8)() and owns(staying, 8)(), within=10, what="a 8/8 split")
        await leaving.halt()
        released_at = time.monotonic()

        assert leaving.ownership.token not in set((await holders(redis)).values())  # deleted, not left to lapse
        assert await redis.zscore(names.members_key(SERVICE), leaving.ownership.token) is None
        await eventually(owns(staying, COUNT), within=LEASE_MS / 1000, what="the released shards taken")
        assert time.monotonic() - released_at < LEASE_MS / 1000  # sooner than any lease could lapse


async def test_a_lease_taken_by_another_stops_that_shards_work(redis: Redis) -> None:
    workers = Workers()
    async with cluster_of_replicas(redis, workers) as start:
        replica = start("evaluator-1")
        await eventually(owns(replica, COUNT), within=5, what="every shard held")
        # Another replica holds shard 5 now (as after a pause longer than the lease): this one must stop working it.
        await redis.set(names.shard_owner_key(SERVICE, 5), "evaluator-9:intruder", px=60_000)
        await eventually(lambda: 5 not in workers.running, within=5 * INTERVAL_S + SLACK_S, what="shard 5 given up")
        assert 5 not in replica.ownership.owned
        assert await redis.get(names.shard_owner_key(SERVICE, 5)) == b"evaluator-9:intruder"  # not released: not ours


async def test_work_that_raises_lease_lost_ends_without_releasing(redis: Redis) -> None:
    ownership = ShardOwnership(
        redis, service=SERVICE, consumer="evaluator-1", count=2, lease_ms=LEASE_MS, interval_s=INTERVAL_S
    )
    stop = asyncio.Event()
    calls: list[int] = []

    async def work(shard: int, shard_stop: asyncio.Event) -> None:
        calls.append(shard)
        if shard == 1:
            await redis.set(ownership.owner_key(1), "evaluator-9:other", px=60_000)  # a fenced script's verdict
            raise ShardLeaseLost(ownership.owner_key(1))
        await shard_stop.wait()

    task = asyncio.create_task(ownership.run(stop, work))
    try:
        await eventually(lambda: 1 in calls and ownership.owned == {0}, within=5, what="shard 1 dropped", alive=task)
        await asyncio.sleep(2 * INTERVAL_S)
        assert ownership.owned == {0} and calls.count(1) == 1  # not taken back: another replica holds it
    finally:
        stop.set()
        await task


def test_the_lease_must_outlast_two_renewals(redis: Redis) -> None:
    with pytest.raises(ValueError, match="two renewal intervals"):
        ShardOwnership(redis, service=SERVICE, consumer="x", count=4, lease_ms=1000, interval_s=0.5)
