"""Property: for random alerts of every condition and frequency, PATCHes, deletes and trades, the evaluator's
triggers are the oracle's firings (oracle.py, docs/conditions.md): per alert the same firings in the same order, none
missed, none twice; with the Matcher, with three replica consumers, and with processes one of which is SIGKILLed."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from pathlib import Path

import pytest
from conditions_testkit import (
    FIRINGS_PER_HOUR,
    SYMBOLS,
    Create,
    Delete,
    Flush,
    Operation,
    Patch,
    Redeliver,
    Scenario,
    Trade,
    assert_same_firings,
    run_operations,
    shard_triggers,
)
from evaluator_testkit import SHARDS, MatcherDriver, ReplicaDriver, drained, shard_of_tick
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEvent, Condition, Frequency, Tick
from pricealert.common.publisher import publish_many
from pricealert.common.redisconn import connect
from pricealert.common.shards import shard_of
from pricealert.devstack.processes import ServiceProcess
from pricealert.evaluator.handlers import SERVICE
from pricealert.testsupport.polling import eventually

# Strategies: prices a few percent apart (so percents and ranges are reached), exact bounds and targets among them.
PRICES = [Decimal(n) for n in range(95, 106)] + [Decimal(p) for p in ("96.7", "99.5", "100.5", "103.3", "104.95")]
PERCENTS = [Decimal(p) for p in ("0.5", "1", "2", "3.3", "5", "10")]
prices = st.sampled_from(PRICES)
bounds = st.lists(prices, min_size=2, max_size=2, unique=True).map(lambda pair: (min(pair), max(pair)))
percents = st.sampled_from(PERCENTS)
windows = st.sampled_from(["1m", "1m", "5m", "15m", "1h", "4h", "24h"])
cooldowns = st.sampled_from([1, 2, 5, 30, 120])
# ms between trades: mostly under 2 s (often within one bucket of every window), sometimes across a window's edge,
# a cooldown or an hour, rarely backwards
gaps = st.one_of(
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=2_000),
    st.sampled_from([59_000, 60_000, 61_000, 300_000, 3_600_000, 86_400_000]),
    st.integers(min_value=-1_500, max_value=-1),
)


def operations(
    conditions: list[Condition] | None = None,
    frequencies: list[Frequency] | None = None,
    patches: bool = True,
    max_size: int = 20,
) -> st.SearchStrategy[list[Operation]]:
    """Random operation lists over SYMBOLS (only `conditions` and `frequencies` if given; no PATCH if not `patches`)."""
    symbols = st.sampled_from(SYMBOLS)
    creates = st.builds(
        Create,
        symbols,
        st.sampled_from(conditions or list(Condition)),
        st.sampled_from(frequencies or list(Frequency)),
        cooldowns,
        prices,
        bounds,
        percents,
        windows,
        st.one_of(st.none(), st.none(), st.integers(min_value=1, max_value=90)),
    )
    alerts = st.integers(min_value=0, max_value=3)
    edits = st.builds(
        Patch, alerts, prices, bounds, percents, windows, cooldowns, st.booleans(),
        st.sampled_from([None, None, "paused", "active", "active"]),
        st.sampled_from([None, None, None, *(frequencies or list(Frequency))]),
    )  # fmt: skip
    # Steps: mostly bursts of one symbol's trades (listed first: the simplest examples are trades, not alerts).
    bursts = st.builds(
        lambda symbol, moves: [Trade(symbol, price, gap) for price, gap in moves],
        symbols,
        st.lists(st.tuples(prices, gaps), min_size=3, max_size=10),
    )
    steps: list[st.SearchStrategy[list[Operation]]] = [bursts] * 5
    steps += [st.tuples(creates).map(list), st.tuples(st.builds(Delete, alerts)).map(list), st.just([Flush()])]
    if patches:
        steps += [st.tuples(edits).map(list)] * 2
    steps += [st.tuples(st.builds(Redeliver, st.integers(min_value=0, max_value=20))).map(list)]
    # a few alerts first, so that most examples fire something
    return st.builds(
        lambda first, rest: first + [op for step in rest for op in step],
        st.lists(creates, min_size=1, max_size=6),
        st.lists(st.one_of(steps), min_size=6, max_size=max_size),
    )


SHARDS_USED = sorted({shard_of(symbol, SHARDS) for symbol in SYMBOLS})


async def scenario_triggers(
    redis_url: str, ops: list[Operation], batch_size: int | None, rng: random.Random | None = None
) -> None:
    redis = connect(redis_url)
    try:
        await redis.flushall()
        driver: MatcherDriver | ReplicaDriver
        if batch_size is None:
            driver = MatcherDriver(redis, FIRINGS_PER_HOUR)
        else:
            driver = ReplicaDriver(redis, SHARDS_USED, batch_size, FIRINGS_PER_HOUR, rng or random.Random(0))
            await driver.start()
        scenario = Scenario()
        await run_operations(driver, ops, scenario)
        assert_same_firings(await shard_triggers(redis, SHARDS), scenario)
    finally:
        await redis.aclose()


HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


# The timeouts leave room to shrink a failure (the tests pass within a minute together).
@pytest.mark.timeout(600)
@settings(max_examples=300, deadline=None, suppress_health_check=HEALTH)
@given(ops=operations())
def test_the_matcher_fires_what_the_oracle_fires(redis_url: str, ops: list[Operation]) -> None:
    asyncio.run(scenario_triggers(redis_url, ops, None))


@pytest.mark.timeout(600)
@settings(max_examples=25, deadline=None, suppress_health_check=HEALTH)
@given(ops=operations(max_size=12), batch_size=st.integers(min_value=1, max_value=4), rng=st.randoms())
def test_three_replicas_fire_what_the_oracle_fires(
    redis_url: str, ops: list[Operation], batch_size: int, rng: random.Random
) -> None:
    asyncio.run(scenario_triggers(redis_url, ops, batch_size, rng))


def random_bounds(rng: random.Random) -> tuple[Decimal, Decimal]:
    low, high = sorted(rng.sample(PRICES, 2))
    return low, high


def random_operations(rng: random.Random, count: int) -> list[Operation]:
    """A long seeded workload of the strategies' kind: alerts of every condition and frequency, edits, trades."""
    ops: list[Operation] = []
    walk = dict.fromkeys(SYMBOLS, 5)  # each symbol's index into PRICES, a random walk
    for _ in range(count):
        roll = rng.random()
        if roll < 0.06:
            ops.append(
                Create(
                    rng.choice(SYMBOLS), rng.choice(list(Condition)), rng.choice(list(Frequency)),
                    rng.choice([1, 2, 5, 30]), rng.choice(PRICES), random_bounds(rng), rng.choice(PERCENTS),
                    rng.choice(["1m", "5m", "1h"]), rng.choice([None, None, None, rng.randint(5, 600)]),
                )
            )  # fmt: skip
        elif roll < 0.08:
            ops.append(
                Patch(
                    rng.randrange(40), rng.choice(PRICES), random_bounds(rng), rng.choice(PERCENTS),
                    rng.choice(["1m", "5m"]),
                    rng.choice([1, 2, 5]), rng.random() < 0.5, rng.choice([None, "paused", "active", "active"]),
                )
            )  # fmt: skip
        elif roll < 0.085:
            ops.append(Delete(rng.randrange(40)))
        elif roll < 0.1:
            ops.append(Flush())
        else:
            symbol = rng.choice(SYMBOLS)
            walk[symbol] = min(len(PRICES) - 1, max(0, walk[symbol] + rng.choice([-2, -1, 1, 2])))
            gap = rng.choice([0, 300, 800, 1500, 2500]) if rng.random() < 0.97 else rng.choice([61_000, 3_600_000])
            ops.append(Trade(symbol, PRICES[walk[symbol]], gap))
    return ops


class ProcessDriver:
    """Evaluator processes: events and ticks on their streams, each event applied before the next tick is appended.

    After `kill_after` ticks the owner of the first symbol's shard is SIGKILLed; after `restart_after` it starts again.
    """

    def __init__(self, redis: Redis, replicas: list[ServiceProcess], kill_after: int, restart_after: int) -> None:
        self.redis = redis
        self.replicas = replicas
        self.pending: dict[int, list[Tick]] = {}
        self.ticks = 0
        self.kill_after, self.restart_after = kill_after, restart_after
        self.victim: int | None = None

    async def apply(self, event: AlertEvent) -> None:
        stream = AlertEvent.stream_of(shard_of(event.symbol, SHARDS))
        await publish_many(self.redis, stream, [event])
        await eventually(lambda: drained(self.redis, stream), within=30, what=f"{event.type} of {event.alert_id}")

    async def add(self, tick: Tick) -> None:
        self.pending.setdefault(shard_of_tick(tick), []).append(tick)

    async def flush(self) -> None:
        for shard, ticks in self.pending.items():
            await publish_many(self.redis, Tick.stream_of(shard), ticks)
            self.ticks += len(ticks)
        self.pending.clear()
        if self.victim is None and self.ticks >= self.kill_after:
            owner = await self.redis.get(names.shard_owner_key(SERVICE, shard_of(SYMBOLS[0], SHARDS)))
            self.victim = int(owner.decode().split(":")[0].removeprefix("ev-"))
            self.replicas[self.victim].kill()
        elif self.victim is not None and self.ticks >= self.restart_after and not self.replicas[self.victim].running:
            self.replicas[self.victim].start()
        for shard in SHARDS_USED:
            await eventually(lambda s=shard: drained(self.redis, Tick.stream_of(s)), within=60, what="ticks judged")


async def groups_ready(redis: Redis) -> bool:
    """Both groups of every shard the symbols are on exist (a new ticks group starts at the stream's end)."""
    for shard in SHARDS_USED:
        for stream in (Tick.stream_of(shard), AlertEvent.stream_of(shard)):
            if not await redis.exists(stream) or not await redis.xinfo_groups(stream):
                return False
    return True


@pytest.mark.timeout(180)
async def test_sigkill_of_a_replica_neither_loses_nor_doubles_a_firing(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    ops = random_operations(random.Random(18), 2400)
    assert sum(isinstance(op, Create) for op in ops) > 20
    env = {
        "REDIS_URL": redis_url,
        "EVALUATOR_RECLAIM_IDLE_MS": "1000",
        "EVALUATOR_TICK_BATCH_SIZE": "7",
        "EVALUATOR_SHARD_LEASE_MS": "3000",
        "EVALUATOR_SHARD_INTERVAL_S": "0.5",
        "EVALUATOR_FIRINGS_PER_HOUR": str(FIRINGS_PER_HOUR),
        "LOG_LEVEL": "WARNING",
    }
    replicas = [
        ServiceProcess("evaluator", {**env, "CONSUMER_NAME": f"ev-{n}"}, log_path=tmp_path / f"ev-{n}.log").start()
        for n in range(3)
    ]
    try:
        await eventually(lambda: groups_ready(redis), within=30, what="groups")
        trades = sum(isinstance(op, Trade) for op in ops)
        driver = ProcessDriver(redis, replicas, kill_after=trades // 3, restart_after=2 * trades // 3)
        scenario = Scenario()
        await run_operations(driver, ops, scenario)
        assert driver.victim is not None and replicas[driver.victim].running
        assert_same_firings(await shard_triggers(redis, SHARDS), scenario)
        fired = scenario.oracle.firings
        assert sum(len(f) for f in fired.values()) > 30, "the workload should fire often"
        assert any(f.paused for firings in fired.values() for f in firings), "and reach the hourly limit"
    finally:
        for replica in replicas:
            replica.stop()
