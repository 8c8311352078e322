"""The cluster client's MULTI and stream reads, as the services use them, on a real 3-master Redis Cluster."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from redis.exceptions import RedisClusterException, ResponseError

from pricealert.common import names
from pricealert.common.redisconn import RedisClient, wait_for_redis


async def test_a_multi_of_one_shard_runs_every_command_and_answers_in_order(
    redis_cluster: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await wait_for_redis(redis_cluster)
    # redis-py's own cluster MULTI queues each command through a thread of its own (and blocks the loop meanwhile).
    monkeypatch.setattr(threading.Thread, "start", lambda _: pytest.fail("a queued command started a thread"))
    stream = names.triggers_stream(3)
    await redis_cluster.xgroup_create(stream, "g", id="0", mkstream=True)
    first = await redis_cluster.xadd(stream, {"n": "0"})
    async with redis_cluster.pipeline(transaction=True) as pipe:
        pipe.xadd(names.dead_letter_stream(stream), {"n": "0"})
        pipe.set(names.notifier_sent_key(3, "t1"), "1", ex=60)
        pipe.delete(names.notifier_lease_key(3, "t1"), names.notifier_retry_key(3, "t1"))
        pipe.zrem(names.notifier_retry_queue_key(3), "t1")
        pipe.xack(stream, "g", first)
        replies = await pipe.execute()
    assert replies[1:] == [True, 0, 0, 0]
    assert await redis_cluster.get(names.notifier_sent_key(3, "t1")) == b"1"
    assert await redis_cluster.xlen(names.dead_letter_stream(stream)) == 1


async def test_a_multi_across_shards_is_refused(redis_cluster: RedisClient) -> None:
    await wait_for_redis(redis_cluster)
    with pytest.raises((RedisClusterException, ResponseError)):
        async with redis_cluster.pipeline(transaction=True) as pipe:
            pipe.set(names.notifier_sent_key(1, "t"), "1")
            pipe.set(names.notifier_sent_key(2, "t"), "1")
            await pipe.execute()
    assert await redis_cluster.exists(names.notifier_sent_key(1, "t"), names.notifier_sent_key(2, "t")) == 0


async def test_a_group_read_finds_its_node_without_asking_redis_for_the_keys(
    redis_cluster: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await wait_for_redis(redis_cluster)
    streams = [names.ticks_stream(k) for k in range(16)]
    for stream in streams:
        await redis_cluster.xgroup_create(stream, "g", id="0", mkstream=True)
        await redis_cluster.xadd(stream, {"stream": stream})

    async def no_round_trip(*args: Any) -> Any:
        raise AssertionError(f"COMMAND GETKEYS asked for {args}")

    monkeypatch.setattr(redis_cluster.commands_parser, "get_keys", no_round_trip)  # type: ignore[union-attr]  # a cluster client
    for stream in streams:
        [[name, entries]] = await redis_cluster.xreadgroup("g", "c", {stream: ">"}, count=10)
        assert name == stream.encode() and len(entries) == 1
