"""Three evaluator processes share the shards; the owner of one is killed with SIGKILL mid-stream: its shards move
to the others, nothing is missed, nothing fired twice."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from pathlib import Path

import pytest
from evaluator_testkit import SHARDS, alert_event, fired_alert_ids, publish_alert_events, tick_stream
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Tick, now_ms
from pricealert.common.publisher import publish_many
from pricealert.common.shards import shard_of
from pricealert.devstack.processes import ServiceProcess
from pricealert.evaluator.handlers import SERVICE
from pricealert.testsupport.polling import eventually

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def oracle(alerts: list[tuple[str, str, str, Decimal]], ticks: list[tuple[str, Decimal]]) -> set[str]:
    """Alerts that fire, given every alert was indexed before the first tick; the order of ticks is irrelevant."""
    fired = set()
    for alert_id, symbol, condition, target in alerts:
        prices = [p for s, p in ticks if s == symbol]
        reached_above, reached_below = any(p >= target for p in prices), any(p <= target for p in prices)
        # cross: whichever tick comes first fixes the side, the set fires iff it reaches the target both ways
        fires = {"above": reached_above, "below": reached_below, "cross": reached_above and reached_below}
        if fires[condition]:
            fired.add(alert_id)
    return fired


async def ticks_groups(redis: Redis) -> bool:
    """Every symbol's ticks group exists (a new group starts at the stream's end: earlier ticks judge nothing)."""
    for symbol in SYMBOLS:
        stream = tick_stream(symbol)
        if not await redis.exists(stream) or not await redis.xinfo_groups(stream):
            return False
    return True


async def index_size(redis: Redis) -> int:
    """Alerts in the index of the symbols."""
    total = 0
    for symbol in SYMBOLS:
        shard = shard_of(symbol, SHARDS)
        for key in (
            names.eval_above_key(shard, symbol),
            names.eval_below_key(shard, symbol),
            names.eval_cross_key(shard, symbol),
        ):
            total += await redis.zcard(key)
    return total


async def all_acknowledged(redis: Redis) -> bool:
    """Every tick of every symbol's stream delivered and acknowledged."""
    for symbol in SYMBOLS:
        newest = await redis.xrevrange(tick_stream(symbol), count=1)
        group = next(g for g in await redis.xinfo_groups(tick_stream(symbol)) if g["name"] == b"evaluator")
        if group["last-delivered-id"] != newest[0][0] or group["pending"] != 0:
            return False
    return True


async def publish_ticks(redis: Redis, ticks: list[tuple[str, Decimal]], first_trade_id: int) -> None:
    """Append the ticks to their symbols' shard streams, in order per symbol."""
    for symbol in SYMBOLS:
        chunk = [
            Tick(symbol=s, price=p, trade_id=first_trade_id + i, exchange_time=now_ms(), received_at=now_ms())
            for i, (s, p) in enumerate(ticks)
            if s == symbol
        ]
        await publish_many(redis, tick_stream(symbol), chunk)


@pytest.mark.timeout(120)
async def test_sigkill_of_one_replica_loses_and_duplicates_nothing(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    rng = random.Random(7)
    alerts = [
        (f"a{n}", rng.choice(SYMBOLS), rng.choice(["above", "below", "cross"]), Decimal(rng.randint(900, 1100)))
        for n in range(300)
    ]
    env = {
        "REDIS_URL": redis_url,
        "EVALUATOR_RECLAIM_IDLE_MS": "1000",
        "EVALUATOR_TICK_BATCH_SIZE": "50",
        "EVALUATOR_SHARD_LEASE_MS": "3000",
        "EVALUATOR_SHARD_INTERVAL_S": "0.5",
        "LOG_LEVEL": "WARNING",
    }
    replicas = [
        ServiceProcess("evaluator", {**env, "CONSUMER_NAME": f"ev-{n}"}, log_path=tmp_path / f"ev-{n}.log").start()
        for n in range(3)
    ]
    try:
        await eventually(lambda: ticks_groups(redis), within=30)
        await publish_alert_events(redis, [alert_event(a, c, str(t), symbol=s) for a, s, c, t in alerts])

        async def indexed() -> bool:
            return await index_size(redis) == len(alerts)

        await eventually(indexed, within=30)
        # The victim: the replica that owns BTCUSDT's shard (its lease's token starts with its consumer name).
        owner = await redis.get(names.shard_owner_key(SERVICE, shard_of("BTCUSDT", SHARDS)))
        victim = int(owner.decode().split(":")[0].removeprefix("ev-"))
        # A random walk per symbol, as one trade stream; the kill lands a third of the way through.
        prices = dict.fromkeys(SYMBOLS, 1000)
        ticks: list[tuple[str, Decimal]] = []
        for _ in range(6000):
            symbol = rng.choice(SYMBOLS)
            prices[symbol] += rng.choice([-3, -2, -1, 1, 2, 3])
            ticks.append((symbol, Decimal(prices[symbol])))
        for n in range(0, len(ticks), 200):
            await publish_ticks(redis, ticks[n : n + 200], n)
            if n == 2000:
                replicas[victim].kill()
            await asyncio.sleep(0.01)
        await eventually(lambda: all_acknowledged(redis), within=60)
        fired = await fired_alert_ids(redis)
        assert len(fired) == len(set(fired)), "an alert fired twice"
        assert set(fired) == oracle(alerts, ticks)
        assert fired, "the scenario should fire some alerts"
    finally:
        for replica in replicas:
            replica.stop()
