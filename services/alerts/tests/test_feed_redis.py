"""The feed's Redis side: on a cluster (one pipeline writes feeds on every master, a feed reads its own user's
slot), and a feed whose Redis goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alerts_testkit import TokenRoot
from feed_testkit import write

from pricealert.alerts.feedstream import Feeds
from pricealert.alerts.feedwriter import FEED_TTL_S, append
from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.common.feed import FeedEvent
from pricealert.common.redisconn import RedisClient, connect_cluster
from pricealert.devstack.servers import RedisServer
from pricealert.testsupport.cluster import RedisClusterNodes

USERS = [f"user-{n}" for n in range(12)]


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[RedisClient]:
    """A client of the emptied 3-master cluster."""
    client = connect_cluster(redis_cluster_url)
    yield client
    await client.aclose()


async def test_one_batch_writes_feeds_on_every_master(
    cluster: RedisClient, redis_cluster_nodes: RedisClusterNodes
) -> None:
    assert len({redis_cluster_nodes.master_of(names.feed_stream(u)).port for u in USERS}) == 3
    events = [await write(cluster, user, 1) for user in USERS]
    await append(cluster, events)  # a second batch, all users in one pipeline
    for user in USERS:
        entries = await cluster.xrange(names.feed_stream(user))
        assert [FeedEvent.from_fields(f).user_id for _, f in entries] == [user, user]
        assert 0 < await cluster.ttl(names.feed_stream(user)) <= FEED_TTL_S


async def test_a_feed_reads_its_users_stream_on_the_cluster(
    cluster: RedisClient, redis_cluster_url: str, token_root: TokenRoot
) -> None:
    settings = AlertsSettings(
        redis_cluster_url=redis_cluster_url, token_root_public_key_file=token_root.public_key_file, feed_ping_s=0.5
    )
    feeds = Feeds(settings)
    try:
        await write(cluster, "user-1", 1)  # before: not sent
        start, gap = await feeds.start("user-1", None)
        assert gap is None
        events = feeds.events("user-1", start)
        reading = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.2)  # blocked in XREAD by now
        await write(cluster, "user-2", 2)
        await write(cluster, "user-1", 3)
        async with asyncio.timeout(5):
            event = await reading
        assert json.loads(str(event.data))["source_id"] == "a1:3"
        await events.aclose()
    finally:
        await feeds.close()


async def test_a_feed_ends_cleanly_when_redis_goes_away(tmp_path: Path, token_root: TokenRoot) -> None:
    server = RedisServer(tmp_path / "redis").start()
    settings = AlertsSettings(redis_url=server.url, token_root_public_key_file=token_root.public_key_file)
    feeds = Feeds(settings)
    try:
        start, _ = await feeds.start("user-1", None)
        reading = asyncio.ensure_future(anext(feeds.events("user-1", start)))
        await asyncio.sleep(0.2)  # blocked in XREAD by now
        server.stop(kill=True)
        with pytest.raises(StopAsyncIteration):  # the stream ends (the client reconnects), no error escapes
            async with asyncio.timeout(15):
                await reading
    finally:
        server.stop()
        await feeds.close()
