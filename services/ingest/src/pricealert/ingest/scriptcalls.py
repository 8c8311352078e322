"""Several script calls in one go, in order: one pipelined round trip on one Redis; on a cluster the calls of each
slot one after the other, the slots concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import NoScriptError

from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient

ScriptCall = tuple[AsyncScript, list[str], list[Any]]


async def call_scripts(redis: RedisClient, calls: Sequence[ScriptCall]) -> list[Any]:
    """Run `calls` (script, keys, args); their replies in order. On a cluster, a call whose slot's master could not
    be reached has the transient error as its reply (the other slots' calls are made)."""
    if not calls:
        return []
    if len(calls) == 1:
        script, keys, args = calls[0]
        return [await script(keys=keys, args=args)]
    if isinstance(redis, Redis):
        return await _pipelined(redis, calls)
    # A cluster pipeline does not load missing scripts (NOSCRIPT fails it): one call each, routed by its keys.
    by_slot: dict[int, list[int]] = {}
    for index, (_, keys, _) in enumerate(calls):
        by_slot.setdefault(key_slot(keys[0].encode()), []).append(index)
    replies: list[Any] = [None] * len(calls)

    async def in_order(indexes: list[int]) -> None:
        for position, index in enumerate(indexes):
            script, keys, args = calls[index]
            try:
                replies[index] = await script(keys=keys, args=args)
            except TRANSIENT_REDIS_ERRORS as exc:
                # That slot's master is away: its calls fail, the other slots' go on (the caller retries these).
                for later in indexes[position:]:
                    replies[later] = exc
                return

    await asyncio.gather(*(in_order(indexes) for indexes in by_slot.values()))
    return replies


async def _pipelined(redis: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    # The scripts are idempotent: after a NOSCRIPT (a restarted Redis) the batch is sent again, once loaded.
    try:
        return await _send(redis, calls)
    except NoScriptError:
        for script in {id(script): script for script, _, _ in calls}.values():
            script.sha = await redis.script_load(script.script)
        return await _send(redis, calls)


async def _send(redis: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    # EVALSHA queued directly: a pipeline given Script objects asks SCRIPT EXISTS first, a second round trip.
    async with redis.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return list(await pipe.execute())
