"""The notifier on a real 3-master Redis Cluster: its scripts and group commits keep to one shard's slot each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from notifier_testkit import (
    SHARDS,
    Replica,
    SelectiveHandler,
    message_id,
    message_ids,
    results,
    selective_server,
    settings_for,
    trigger,
)

from pricealert.common import names
from pricealert.common.events import NotificationResult, Trigger
from pricealert.common.redisconn import RedisClient, connect_cluster, wait_for_redis
from pricealert.common.shards import shard_of
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.cluster import RedisClusterNodes
from pricealert.testsupport.polling import eventually

# One symbol per shard of SHARDS = 4 (shards 3, 0, 1, 2): their tags {s0}..{s3} are served by all three masters.
SYMBOLS = ("BTCUSDT", "ETHUSDT", "ADAUSDT", "DOGEUSDT")
PER_SYMBOL = 25


def shard(symbol: str) -> int:
    return shard_of(symbol, SHARDS)


def numbers_of(symbol: str) -> range:
    """The trigger numbers the tests put on `symbol`."""
    index = SYMBOLS.index(symbol)
    return range(index * PER_SYMBOL, (index + 1) * PER_SYMBOL)


@pytest.fixture
async def cluster(redis_cluster_url: str, redis_cluster_nodes: RedisClusterNodes) -> AsyncIterator[RedisClient]:
    """A client of the emptied 3-master cluster, once it is known that the symbols' shards span every master."""
    masters = {redis_cluster_nodes.master_of(Trigger.stream_of(shard(s))).port for s in SYMBOLS}
    assert len(masters) == 3, "the test's symbols should put shards on every master"
    client = connect_cluster(redis_cluster_url)
    # Learn the layout before the replicas' loops start together, as the worker runner does: a fresh cluster client
    # that many coroutines use at once initializes concurrently and may break connections in use (redis-py).
    await wait_for_redis(client)
    yield client
    await client.aclose()


async def publish(client: RedisClient, triggers: list[Trigger]) -> None:
    """XADD each trigger to its symbol's shard stream (one command each: the streams are on several masters)."""
    for one in triggers:
        await client.xadd(Trigger.stream_of(shard(one.symbol)), one.to_fields())  # type: ignore[arg-type]


def all_triggers() -> list[Trigger]:
    return [trigger(n, symbol=symbol) for symbol in SYMBOLS for n in numbers_of(symbol)]


async def test_one_mail_per_trigger_with_results_and_dead_letters_on_each_shards_streams(
    cluster: RedisClient, smtp_server: MailboxServer
) -> None:
    # Transient failures send some triggers through their shard's retry queue (claim script, retry hash); one
    # user is unverified (the SMISMEMBER beside the lease script); one address is refused for good (dead letter).
    smtp_server.handler.fail_next(6, "451 4.3.0 Try again later")
    await cluster.sadd(names.ACCOUNTS_UNVERIFIED, "u2")
    unverified = trigger(900, symbol="ETHUSDT").model_copy(update={"user_id": "u2"})
    replica = Replica(cluster, settings_for(smtp_server.port))
    try:
        await publish(cluster, [*all_triggers(), unverified])

        async def all_settled() -> bool:
            return len(await results(cluster)) == len(SYMBOLS) * PER_SYMBOL + 1

        await eventually(all_settled, within=20, alive=replica.task)
        await asyncio.sleep(0.3)  # nothing more may follow
        expected = {message_id(n): 1 for symbol in SYMBOLS for n in numbers_of(symbol)}
        assert message_ids(smtp_server) == expected
        for symbol in SYMBOLS:
            k = shard(symbol)
            entries = await cluster.xrange(NotificationResult.stream_of(k))
            on_shard = [NotificationResult.from_fields(fields) for _, fields in entries]
            final = [r for r in on_shard if r.status != "retrying"]  # one result per attempt: the last is final
            ids = {f"t{n}" for n in numbers_of(symbol)} | ({"t900"} if symbol == "ETHUSDT" else set())
            assert {r.trigger_id for r in final} == ids and len(final) == len(ids)
            assert all(r.next_retry_at is not None for r in on_shard if r.status == "retrying")
            for n in numbers_of(symbol):
                assert await cluster.exists(names.notifier_sent_key(k, f"t{n}"))
            assert await cluster.zcard(names.notifier_retry_queue_key(k)) == 0
            assert int((await cluster.xpending(Trigger.stream_of(k), names.GROUP_NOTIFIER))["pending"]) == 0
        [refused] = [r for r in await results(cluster) if r.trigger_id == "t900"]
        assert (refused.status, refused.attempts) == ("failed", 0)
        assert refused.error is not None and refused.error.startswith("email_not_verified:")
        assert not await cluster.exists(names.notifier_lease_key(shard("ETHUSDT"), "t900"))
        assert sum(r.attempts > 1 for r in await results(cluster)) >= 1  # some went through a retry queue

        smtp_server.handler.fail_next(1, "550 5.1.1 No such user")
        await publish(cluster, [trigger(901, symbol="DOGEUSDT")])
        dead = names.dead_letter_stream(Trigger.stream_of(shard("DOGEUSDT")))

        async def dead_lettered() -> bool:
            return await cluster.xlen(dead) == 1

        await eventually(dead_lettered, alive=replica.task)
        [(_, fields)] = await cluster.xrange(dead)
        assert fields[b"trigger_id"] == b"t901" and b"550" in fields[b"dl_reason"]
    finally:
        await replica.stop()


async def test_two_notifiers_on_one_cluster_send_each_trigger_once(cluster: RedisClient) -> None:
    # A slow server and a reclaim time shorter than a batch make the two take over each other's entries while
    # they are being sent; transient failures send some through the retry queues.
    handler = SelectiveHandler(data_delay_s=0.01)
    server = selective_server(handler).start()
    handler.fail_next(10, "451 4.3.0 Try again later")
    replicas = [
        Replica(cluster, settings_for(server.port, consumer_name=name, reclaim_idle_ms=100, concurrency=2))
        for name in ("n1", "n2")
    ]
    try:
        await publish(cluster, all_triggers())
        total = len(SYMBOLS) * PER_SYMBOL

        async def all_settled() -> bool:
            for replica in replicas:
                assert not replica.task.done(), replica.task.exception()
            return len(await results(cluster)) >= total

        await eventually(all_settled, within=30)
        await asyncio.sleep(0.5)
        assert message_ids(server) == {message_id(n): 1 for n in range(total)}
        outcomes = await results(cluster)
        assert sorted(r.trigger_id for r in outcomes) == sorted(f"t{n}" for n in range(total))
        assert {r.status for r in outcomes} == {"sent"}
        for symbol in SYMBOLS:
            assert int((await cluster.xpending(Trigger.stream_of(shard(symbol)), names.GROUP_NOTIFIER))["pending"]) == 0
    finally:
        await asyncio.gather(*(replica.stop() for replica in replicas))
        server.stop()
