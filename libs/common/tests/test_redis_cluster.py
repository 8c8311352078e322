"""The connection factory, the Redis wait and the consumer loop on a real Redis Cluster (testsupport's cluster)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)

from pricealert.common.consumer import ConsumerOptions, Message, StreamConsumer
from pricealert.common.redisconn import (
    TRANSIENT_REDIS_ERRORS,
    RedisClient,
    connect_cluster,
    wait_for_redis,
)
from pricealert.devstack.ports import free_port
from pricealert.testsupport.cluster import RedisClusterNodes
from pricealert.testsupport.polling import eventually

STREAM = "test:cluster:stream"


def test_cluster_errors_of_a_failover_are_transient() -> None:
    for error in (ClusterDownError, MasterDownError, TryAgainError, SlotNotCoveredError):
        assert issubclass(error, TRANSIENT_REDIS_ERRORS), error
    # NOGROUP, CROSSSLOT, a script's error; and MOVED/ASK, which the cluster client follows itself and which a
    # one-Redis client meets only when pointed at a cluster node: a misconfiguration that must stop the worker.
    for error in (ResponseError, MovedError, AskError):
        assert not issubclass(error, TRANSIENT_REDIS_ERRORS), error


async def test_the_factory_connects_through_one_seed_and_reaches_every_master(redis_cluster_url: str) -> None:
    one_seed = redis_cluster_url.split(",")[0]
    client = connect_cluster(one_seed)
    assert isinstance(client, RedisCluster)
    try:
        keys = [f"test:key:{n}" for n in range(30)]
        for key in keys:
            await client.set(key, key)
        assert [await client.get(key) for key in keys] == [key.encode() for key in keys]
        masters = {client.get_node_from_key(key).name for key in keys}
        assert len(masters) == 3, "30 keys should land on every one of the 3 masters"
    finally:
        await client.aclose()


async def test_a_dead_seed_in_the_list_is_skipped(redis_cluster_url: str) -> None:
    client = connect_cluster(f"redis://127.0.0.1:{free_port()}, {redis_cluster_url}")
    try:
        await client.set("test:seed", "1")
        assert await client.get("test:seed") == b"1"
    finally:
        await client.aclose()


async def test_wait_for_redis_returns_once_the_cluster_answers(redis_cluster: RedisClient) -> None:
    await asyncio.wait_for(wait_for_redis(redis_cluster), 10)


async def test_wait_for_redis_keeps_waiting_while_no_node_answers() -> None:
    client = connect_cluster(f"redis://127.0.0.1:{free_port()}")
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.5, stop.set)
    try:
        started = time.monotonic()
        await asyncio.wait_for(wait_for_redis(client, stop=stop), 10)  # returns on stop, raises nothing
        assert time.monotonic() - started >= 0.4
    finally:
        await client.aclose()


async def _publish(client: RedisCluster, n: int, *, within: float = 30.0) -> None:
    """XADD entry `n`, retrying through a failover as a publisher would."""
    deadline = time.monotonic() + within
    while True:
        try:
            await client.xadd(STREAM, {"n": str(n)})
            return
        except TRANSIENT_REDIS_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.mark.timeout(60)
async def test_a_consumer_rides_through_the_failover_of_its_streams_master_and_its_return(
    redis_cluster_with_replicas: RedisClusterNodes,
) -> None:
    cluster = redis_cluster_with_replicas
    client = connect_cluster(cluster.seeds)
    handled: list[str] = []

    async def records(messages: Sequence[Message]) -> None:
        handled.extend(m.fields["n"] for m in messages)

    options = ConsumerOptions(stream=STREAM, group="g", consumer="c", service="test", block_ms=100, reclaim_every_s=0.2)
    consumer = StreamConsumer(client, options, records)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for n in range(20):
            await _publish(client, n)
        await eventually(lambda: len(handled) >= 20, within=10, what="the first entries handled", alive=task)
        await asyncio.sleep(1.2)  # the acks reach the replica (and the AOF's once-a-second fsync)

        master = cluster.master_of(STREAM)
        master.stop(kill=True)
        for n in range(20, 40):
            await _publish(client, n)
        await eventually(
            lambda: sorted(handled, key=int) == [str(n) for n in range(40)],
            within=30,
            what="every entry handled once after the failover",
            alive=task,
        )
        assert cluster.master_of(STREAM) is not master  # its replica took over
        pending = await client.xpending(STREAM, "g")
        assert int(pending["pending"]) == 0

        master.start()  # the old master comes back (AOF and nodes.conf kept) and rejoins as a replica
        cluster.wait_ok()
        await _publish(client, 40)
        await eventually(lambda: len(handled) == 41, within=10, what="an entry after the rejoin", alive=task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.aclose()


@pytest.mark.timeout(60)
async def test_a_consumer_waits_out_a_restart_of_the_whole_cluster(
    redis_cluster_with_replicas: RedisClusterNodes,
) -> None:
    cluster = redis_cluster_with_replicas
    client = connect_cluster(cluster.seeds)
    handled: list[str] = []

    async def records(messages: Sequence[Message]) -> None:
        handled.extend(m.fields["n"] for m in messages)

    options = ConsumerOptions(stream=STREAM, group="g", consumer="c", service="test", block_ms=100)
    stop = asyncio.Event()
    task = asyncio.create_task(StreamConsumer(client, options, records).run(stop))
    try:
        await _publish(client, 0)
        await eventually(lambda: handled == ["0"], within=10, what="the first entry handled", alive=task)
        await asyncio.sleep(1.2)  # the AOF's once-a-second fsync
        for node in cluster.nodes:
            node.stop()
        await asyncio.sleep(2)  # the consumer finds no node at all meanwhile
        assert not task.done(), task
        for node in cluster.nodes:
            node.start()
        cluster.wait_ok()
        await _publish(client, 1)
        await eventually(lambda: handled == ["0", "1"], within=20, what="an entry after the restart", alive=task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.aclose()
