"""Symbols to shards: a fixed count (setting SHARDS) and one stable rule, crc32 of the symbol modulo the count."""

from __future__ import annotations

import zlib

from pricealert.common import names
from pricealert.common.redisconn import RedisClient

DEFAULT_SHARDS = 16
MAX_SHARDS = 1024


def shard_of(symbol: str, count: int) -> int:
    """The shard of `symbol` among `count`: CRC-32 (IEEE, as zlib, Go's hash/crc32, Java's CRC32) modulo count."""
    return zlib.crc32(symbol.upper().encode()) % count


class ShardCountMismatch(RuntimeError):
    """This process was configured with another shard count than the data in Redis was written with."""


async def agree_on_shard_count(redis: RedisClient, count: int) -> None:
    """Record `count` in Redis if no process did yet; raise ShardCountMismatch if another count is recorded.

    Processes that disagree would write a symbol's events where its evaluator never reads: refuse to start instead.
    Changing the count is a migration (README "Changing the shard count").
    """
    recorded = await redis.get(names.SHARD_COUNT_KEY)
    if recorded is None:  # the first process: record it (NX: another may have just done so)
        await redis.set(names.SHARD_COUNT_KEY, str(count), nx=True)
        recorded = await redis.get(names.SHARD_COUNT_KEY)
    text = recorded.decode() if isinstance(recorded, bytes) else str(recorded)
    if text != str(count):
        raise ShardCountMismatch(
            f"SHARDS is {count} here but the data in Redis was written with {text} shards; "
            "set SHARDS to the recorded count, or migrate (README: Changing the shard count)"
        )
