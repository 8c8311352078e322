"""The Redis users on a real 3-master cluster: a service's cluster client learns the slots and works as its own user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from cli_testkit import json_of, run_cli, tick_fields
from redis.exceptions import NoPermissionError
from redisacl_testkit import PASSWORDS, apply_users, user_url

from pricealert.common import acl, names
from pricealert.common.consumer import ConsumerOptions, Message, StreamConsumer
from pricealert.common.ownership import ShardOwnership
from pricealert.common.publisher import publish
from pricealert.common.redisconn import RedisClient, connect_cluster
from pricealert.common.shards import agree_on_shard_count
from pricealert.testsupport.cluster import RedisClusterNodes
from pricealert.testsupport.polling import eventually


@pytest.fixture
async def users_on_every_node(redis_cluster_nodes: RedisClusterNodes, redis_cluster: RedisClient) -> AsyncIterator[str]:
    """Every pricealert user set on each node (as `default`, the nodes' admin); the seeds, without a user."""
    for node in redis_cluster_nodes.running():
        await apply_users(node.url)
    yield redis_cluster_nodes.seeds


def seeds_as(seeds: str, role: acl.Role) -> str:
    """The cluster's seed URLs, the first logged in as `role` (the client uses its user on every node)."""
    first, *others = seeds.split(",")
    return ",".join([user_url(first, role.user, PASSWORDS[role.name]), *others])


async def test_the_evaluator_works_its_shards_on_the_cluster_as_its_own_user(
    users_on_every_node: str, redis_cluster: RedisClient
) -> None:
    client = connect_cluster(seeds_as(users_on_every_node, acl.EVALUATOR))
    try:
        await agree_on_shard_count(client, 4)  # CLUSTER SLOTS and COMMAND first: the client learns the layout
        handled: list[str] = []

        async def handle(messages: Sequence[Message]) -> None:
            handled.extend(m.id for m in messages)
            for message in messages:
                await publish(client, names.triggers_stream(2), {"from": message.id})

        async def work(shard: int, shard_stop: asyncio.Event) -> None:
            options = ConsumerOptions(
                names.ticks_stream(shard), names.GROUP_EVALUATOR, "host-1", service="evaluator", exclusive=True
            )
            await StreamConsumer(client, options, handle).run(shard_stop)

        entry = await redis_cluster.xadd(names.ticks_stream(2), tick_fields(1))
        stop = asyncio.Event()
        ownership = ShardOwnership(
            client, service="evaluator", consumer="host-1", count=4, lease_ms=1500, interval_s=0.3
        )
        running = asyncio.create_task(ownership.run(stop, work))
        try:
            await eventually(lambda: handled, within=15, what="a tick handled as the evaluator", alive=running)
        finally:
            stop.set()
            await running
        assert handled == [entry.decode()]
        assert await redis_cluster.xlen(names.triggers_stream(2)) == 1
        with pytest.raises(NoPermissionError):
            await client.xadd(names.ticks_stream(2), tick_fields(2))
    finally:
        await client.aclose()


async def test_the_cli_user_inspects_the_cluster(users_on_every_node: str, redis_cluster: RedisClient) -> None:
    await redis_cluster.xadd(names.ticks_stream(1), tick_fields(1))
    env = {"REDIS_CLUSTER_URL": seeds_as(users_on_every_node, acl.CLI), "SHARDS": "4"}

    streams = await run_cli("streams", "--json", env=env)
    shards = await run_cli("shards", "--json", env=env)

    assert streams.exit_code == 0, streams.output
    assert shards.exit_code == 0, shards.output
    assert next(s for s in json_of(streams)["streams"] if s["name"] == names.ticks_stream(1))["length"] == 1
    assert json_of(shards)["shard_count"] == 4
