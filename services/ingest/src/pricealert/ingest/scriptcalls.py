"""Several script calls in one go: one pipelined round trip on one Redis, concurrent calls on a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from pricealert.common.redisconn import RedisClient

ScriptCall = tuple[AsyncScript, list[str], list[Any]]


async def call_scripts(redis: RedisClient, calls: Sequence[ScriptCall]) -> list[Any]:
    """Run `calls` (script, keys, args); their replies in order."""
    if not calls:
        return []
    if len(calls) == 1:
        script, keys, args = calls[0]
        return [await script(keys=keys, args=args)]
    if isinstance(redis, Redis):
        async with redis.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                await script(keys=keys, args=args, client=pipe)
            return list(await pipe.execute())
    # A cluster pipeline does not load missing scripts (NOSCRIPT fails it): one call each, each routed by its keys.
    return list(await asyncio.gather(*(script(keys=keys, args=args) for script, keys, args in calls)))
