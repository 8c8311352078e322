"""Symbols to shards (a stable rule other languages can repeat) and the shard count every process agrees on."""

from __future__ import annotations

import zlib

import pytest
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import ShardCountMismatch, agree_on_shard_count, shard_of


def test_the_rule_is_crc32_ieee_of_the_upper_case_symbol_modulo_the_count() -> None:
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the CRC-32/IEEE check value: Go's crc32.ChecksumIEEE agrees
    # Known values, fixed forever: changing them moves every symbol to another shard (a migration).
    assert zlib.crc32(b"BTCUSDT") == 2895029187
    assert shard_of("BTCUSDT", 16) == 3
    assert shard_of("ETHUSDT", 16) == 12
    assert shard_of("SOLUSDT", 16) == 0
    assert shard_of("DOGEUSDT", 16) == 6
    assert shard_of("BTCUSDT", 1024) == 963
    assert shard_of("btcusdt", 16) == shard_of("BTCUSDT", 16)
    assert shard_of("BTCUSDT", 1) == 0


@pytest.mark.parametrize("count", [1, 2, 3, 16, 1024])
def test_every_symbol_lands_in_range_and_the_same_place_every_time(count: int) -> None:
    symbols = [f"SYM{i}USDT" for i in range(2000)]
    shards = [shard_of(symbol, count) for symbol in symbols]
    assert all(0 <= shard < count for shard in shards)
    assert shards == [zlib.crc32(symbol.encode()) % count for symbol in symbols]


def test_symbols_spread_over_every_shard() -> None:
    counts = [0] * 16
    for i in range(1600):  # about Binance's trading symbols
        counts[shard_of(f"SYM{i}USDT", 16)] += 1
    assert min(counts) > 50 and max(counts) < 150


async def _agrees(redis: RedisClient) -> None:
    await agree_on_shard_count(redis, 16)  # the first process records its count
    await agree_on_shard_count(redis, 16)  # the next ones with the same count start
    assert await redis.get(names.SHARD_COUNT_KEY) == b"16"
    with pytest.raises(ShardCountMismatch, match="SHARDS is 8 here but the data in Redis was written with 16"):
        await agree_on_shard_count(redis, 8)
    assert await redis.get(names.SHARD_COUNT_KEY) == b"16"  # a refused process changes nothing


async def test_a_process_with_another_count_is_refused(redis: Redis) -> None:
    await _agrees(redis)


async def test_a_process_with_another_count_is_refused_on_a_cluster(redis_cluster: RedisClient) -> None:
    await _agrees(redis_cluster)
