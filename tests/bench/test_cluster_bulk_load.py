"""The cluster bench's alerts: indexed by bulk ZADDs to the masters serving their shards, as on one Redis."""

from __future__ import annotations

from typing import Any

from index_load import load_plain
from redis.asyncio import Redis, RedisCluster

from pricealert.common.redisconn import RedisClient


async def members(redis: RedisClient, keys: list[bytes]) -> dict[bytes, list[tuple[bytes, float]]]:
    """The keys' members with their scores, the member's indexed_at (a clock reading) left out."""
    contents: dict[bytes, Any] = {}
    for key in keys:
        rows = await redis.zrange(key, 0, -1, withscores=True)
        contents[key] = sorted((b"\t".join(m.split(b"\t")[:1] + m.split(b"\t")[2:]), s) for m, s in rows)
    return contents


async def test_a_cluster_gets_the_same_index_as_one_redis(redis: Redis, redis_cluster: RedisClient) -> None:
    symbols = [f"B{n:04d}USDT" for n in range(39)]  # odd: each symbol gets above and below alerts
    await load_plain(redis, 0, 3_000, symbols, 16, chunk=1_000)
    await load_plain(redis_cluster, 0, 3_000, symbols, 16, chunk=1_000)
    on_one = await members(redis, await redis.keys("*"))
    assert len(on_one) == 78 and sum(map(len, on_one.values())) == 3_000
    assert await members(redis_cluster, list(on_one)) == on_one
    assert isinstance(redis_cluster, RedisCluster)
    on_masters = [await redis_cluster.dbsize(target_nodes=node) for node in redis_cluster.get_primaries()]
    assert len(on_masters) == 3 and sum(on_masters) == 78  # no key elsewhere
