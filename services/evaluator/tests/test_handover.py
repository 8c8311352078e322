"""Two evaluators share the shards; one dies holding read ticks: the other takes its shards and fires each once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from evaluator_testkit import SHARDS, alert_event, fired_alert_ids, publish_alert_events, tick_stream
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Tick, now_ms
from pricealert.common.ownership import ShardOwnership
from pricealert.common.publisher import publish_many
from pricealert.common.redisconn import connect
from pricealert.common.shards import shard_of
from pricealert.common.tasks import cancel_and_wait
from pricealert.evaluator.handlers import SERVICE, ownership_of, run, run_shard
from pricealert.evaluator.settings import EvaluatorSettings
from pricealert.testsupport.polling import eventually

LEASE_MS, INTERVAL_S = 3_000, 0.5


def symbols_per_shard(each: int) -> list[str]:
    """Symbols, `each` of them on every shard."""
    found: dict[int, list[str]] = {shard: [] for shard in range(SHARDS)}
    n = 0
    while any(len(symbols) < each for symbols in found.values()):
        symbol, n = f"S{n:04d}USDT", n + 1
        if len(found[shard_of(symbol, SHARDS)]) < each:
            found[shard_of(symbol, SHARDS)].append(symbol)
    return [symbol for symbols in found.values() for symbol in symbols]


SYMBOLS = symbols_per_shard(4)


def settings_for(redis_url: str, name: str) -> EvaluatorSettings:
    return EvaluatorSettings(
        redis_url=redis_url,
        consumer_name=name,
        EVALUATOR_SHARD_LEASE_MS=LEASE_MS,
        EVALUATOR_SHARD_INTERVAL_S=INTERVAL_S,
        EVALUATOR_RECLAIM_IDLE_MS=60_000,  # the takeover, not a reclaim, must hand the pending ticks over
    )


async def owners(redis: Redis) -> Counter[str]:
    """How many shards each token holds."""
    values = [await redis.get(names.shard_owner_key(SERVICE, shard)) for shard in range(SHARDS)]
    return Counter(v.decode() for v in values if v is not None)


class Victim:
    """An evaluator replica run from its parts, so that the test can kill it without it releasing anything."""

    def __init__(self, redis: Redis, settings: EvaluatorSettings) -> None:
        self.settings = settings
        self.ownership: ShardOwnership = ownership_of(redis, settings)

        async def work(shard: int, shard_stop: asyncio.Event) -> None:
            await run_shard(redis, settings, self.ownership, shard, shard_stop)

        self.task = asyncio.create_task(self.ownership.run(asyncio.Event(), work))

    async def kill(self) -> None:
        """Die as a SIGKILL does: no lease given back, no member left, the loops just gone."""

        async def nothing(*_: object) -> None:
            return None

        self.ownership.release = nothing  # type: ignore[method-assign]
        self.ownership.leave = nothing  # type: ignore[method-assign]
        await cancel_and_wait(self.task)


@pytest.fixture
async def survivor(redis: Redis, redis_url: str) -> AsyncIterator[str]:
    """The replica that lives on, run as production runs it; yields its consumer name."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(redis, settings_for(redis_url, "ev-b"), stop))
    yield "ev-b"
    stop.set()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 15)


def tick(symbol: str, price: str, n: int) -> Tick:
    return Tick(symbol=symbol, price=Decimal(price), trade_id=n, exchange_time=now_ms(), received_at=now_ms())


@pytest.mark.timeout(90)
async def test_a_dead_replicas_shards_and_pending_ticks_move_to_the_other(
    redis: Redis, redis_url: str, survivor: str
) -> None:
    victim_redis = connect(redis_url)
    victim = Victim(victim_redis, settings_for(redis_url, "ev-a"))
    try:

        async def shared_evenly() -> bool:
            held = await owners(redis)
            return sorted(held.values()) == [8, 8] and victim.ownership.token in held

        await eventually(shared_evenly, within=20)
        victims = sorted(victim.ownership.owned)
        assert len(victims) == 8
        # One alert per symbol; all indexed by the owners of their shards.
        await publish_alert_events(redis, [alert_event(f"a-{s}", "above", "100", symbol=s) for s in SYMBOLS])

        async def indexed() -> bool:
            return all([await redis.zcard(names.eval_above_key(shard_of(s, SHARDS), s)) == 1 for s in SYMBOLS])

        await eventually(indexed, within=20)
        await victim.kill()
        killed_at = time.monotonic()
        # What the victim had read but not evaluated when it died: the reaching ticks of its shards' symbols,
        # read into its pending list (as XREADGROUP left them), and more of them written after its death.
        for s in SYMBOLS:
            await publish_many(redis, tick_stream(s), [tick(s, "99", 1), tick(s, "101", 2)])
        for shard in victims:
            read = await redis.xreadgroup(names.GROUP_EVALUATOR, "ev-a", {Tick.stream_of(shard): ">"})
            assert len(read[0][1]) == 8  # two ticks of each of the shard's four symbols, pending for the dead one
        for s in SYMBOLS:
            await publish_many(redis, tick_stream(s), [tick(s, "102", 3)])

        async def all_survivors() -> bool:
            return (await owners(redis)).get(victim.ownership.token, 0) == 0 and sum(
                (await owners(redis)).values()
            ) == SHARDS

        await eventually(all_survivors, within=LEASE_MS / 1000 + 6)
        assert time.monotonic() - killed_at <= LEASE_MS / 1000 + 4 * INTERVAL_S + 1.0

        async def every_alert_fired() -> bool:
            return len(await fired_alert_ids(redis)) >= len(SYMBOLS)

        await eventually(every_alert_fired, within=15)
        await asyncio.sleep(0.5)  # anything fired twice would be there by now
        fired = await fired_alert_ids(redis)
        assert sorted(fired) == sorted(f"a-{s}" for s in SYMBOLS)  # once each
        for shard in victims:
            [group] = [g for g in await redis.xinfo_groups(Tick.stream_of(shard)) if g["name"] == b"evaluator"]
            assert group["pending"] == 0
    finally:
        await victim.kill()
        await victim_redis.aclose()
