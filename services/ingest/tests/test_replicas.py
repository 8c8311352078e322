"""Two ingest replicas (own processes) split the shards; a killed one's symbols move to the other within the lease."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
from ingest_testkit import emit_alert, read_shard_ticks, spawn_ingest
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEventType, CatalogSnapshot
from pricealert.common.shards import shard_of
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.testsupport.polling import eventually

SHARDS = 4
LEASE_S = 3.0
REPLICA_ENV = {
    "SHARDS": str(SHARDS),
    "INGEST_SHARD_LEASE_MS": str(int(LEASE_S * 1000)),
    "INGEST_SHARD_INTERVAL_S": "0.5",
}


def symbol_of(stream: str) -> str:
    return stream.partition("@")[0].upper()


async def owners(redis: Redis) -> dict[int, str]:
    """Shard -> the consumer name of the replica holding its lease (tokens are `<consumer>:<random>`)."""
    found = {}
    for shard in range(SHARDS):
        token = await redis.get(names.shard_owner_key("ingest", shard))
        if token is not None:
            found[shard] = token.decode().rpartition(":")[0]
    return found


def session_shards(exchange: FakeExchange) -> list[set[int]]:
    """The shards of the streams of each open connection that carries any."""
    return [
        {shard_of(symbol_of(s), SHARDS) for s in session.streams}
        for session in exchange.open_sessions()
        if session.streams
    ]


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.timeout(150)
async def test_replicas_split_the_shards_and_a_killed_ones_symbols_move_without_a_duplicate(
    redis: Redis, redis_url: str, exchange: FakeExchange
) -> None:
    symbols = sorted(s.symbol for s in exchange.symbols.values() if s.trading)
    streams = {f"{s.lower()}@trade" for s in symbols}
    for symbol in symbols:
        await emit_alert(redis, AlertEventType.CREATED, symbol, shards=SHARDS)
    first = spawn_ingest(exchange, redis_url, "ingest-a", **REPLICA_ENV)
    second = None
    try:
        await eventually(lambda: exchange.subscriptions() == streams, within=20.0, what="the first replica subscribed")
        exchange.start_random_walk(rate_per_s=150, symbols=symbols, seed=7)
        second = spawn_ingest(exchange, redis_url, "ingest-b", **REPLICA_ENV)

        async def split() -> dict[int, str] | None:
            held = await owners(redis)
            if len(held) != SHARDS or sorted(held.values()).count("ingest-a") != SHARDS // 2:
                return None
            by_replica = {name: {k for k, v in held.items() if v == name} for name in ("ingest-a", "ingest-b")}
            with_symbols = {shard_of(s, SHARDS) for s in symbols}
            wanted = sorted(sorted(shards & with_symbols) for shards in by_replica.values() if shards & with_symbols)
            carried = sorted(sorted(shards) for shards in session_shards(exchange))
            return held if carried == wanted and exchange.subscriptions() == streams else None

        held = await eventually(split, within=30.0, what="the shards split, each replica subscribing its own")
        moving = [s for s in symbols if held[shard_of(s, SHARDS)] == "ingest-a"]
        assert moving and len(moving) < len(symbols)
        await asyncio.sleep(1.0)

        first.kill()  # no lease is given back
        first.wait()
        killed_at = time.monotonic()

        async def taken_over() -> bool:
            return set((await owners(redis)).values()) == {"ingest-b"} and session_shards(exchange) == [
                {shard_of(s, SHARDS) for s in symbols}
            ]

        await eventually(taken_over, within=LEASE_S + 10.0, what="the survivor holding and subscribing every shard")
        # Lease, one renewal step, then the subscription (paced at 4 control messages/s).
        assert time.monotonic() - killed_at < LEASE_S + 4.0
        before = {s: await max_trade_id(redis, s) for s in moving}
        await eventually(
            lambda: all_above(redis, before), within=10.0, what="the moved symbols' trades published by the survivor"
        )
        await exchange.stop_random_walks()
        await asyncio.sleep(0.5)

        for shard in range(SHARDS):
            ticks = [(t.symbol, t.trade_id) for t in await read_shard_ticks(redis, shard)]
            assert len(ticks) == len(set(ticks)), f"a trade written twice to shard {shard}'s ticks stream"
            for symbol in {s for s, _ in ticks}:
                ids = [i for s, i in ticks if s == symbol]
                assert ids == sorted(ids)
        # Every replica publishes the catalog: each snapshot is whole, the latest one is what readers take.
        snapshots = [CatalogSnapshot.from_fields(f) for _, f in await redis.xrange(names.SYMBOL_CATALOG)]
        assert len(snapshots) >= 2 and {s.count for s in snapshots} == {len(symbols)}
    finally:
        await exchange.stop_random_walks()
        stop(first)
        stop(second)


async def max_trade_id(redis: Redis, symbol: str) -> int:
    ticks = await read_shard_ticks(redis, shard_of(symbol, SHARDS))
    return max((t.trade_id for t in ticks if t.symbol == symbol), default=0)


async def all_above(redis: Redis, before: dict[str, int]) -> bool:
    return all([await max_trade_id(redis, s) > last for s, last in before.items()])
