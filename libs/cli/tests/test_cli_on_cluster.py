"""`pricealert streams`, `shards` and `dead-letters` on a real 3-master Redis Cluster (REDIS_CLUSTER_URL)."""

from __future__ import annotations

from typing import Any

from cli_testkit import dead_letter_via_consumer, json_of, leave_pending, replicas, run_cli, tick_fields, trigger_fields

from pricealert.common import names
from pricealert.common.health import beat
from pricealert.common.redisconn import RedisClient
from pricealert.testsupport.polling import eventually

COUNT = 4


async def _masters_of(redis: Any, keys: list[str]) -> set[str]:
    await redis.initialize()  # learn the slots (idempotent)
    return {redis.get_node_from_key(key).name for key in keys}


async def test_streams_reports_every_shard_across_the_masters(
    redis_cluster: RedisClient, redis_cluster_url: str
) -> None:
    env = {"REDIS_CLUSTER_URL": redis_cluster_url, "SHARDS": "16"}
    ticks = [names.ticks_stream(k) for k in range(16)]
    assert len(await _masters_of(redis_cluster, ticks)) == 3  # the shards' slots are spread over every master
    for shard, stream in enumerate(ticks):
        await leave_pending(
            redis_cluster,
            stream,
            names.GROUP_EVALUATOR,
            f"evaluator-{shard % 2}",
            [tick_fields(i) for i in range(3)],
            read=1,
        )
    await dead_letter_via_consumer(
        redis_cluster, names.triggers_stream(5), names.GROUP_NOTIFIER, "notifier-a", [trigger_fields(1)], reason="550"
    )
    await redis_cluster.set(names.shard_owner_key("evaluator", 9), "evaluator-1:abc", px=9000)

    result = await run_cli("streams", "--json", env=env)

    assert result.exit_code == 0, result.stderr
    report = json_of(result)
    by_name = {s["name"]: s for s in report["streams"]}
    for stream in ticks:
        [group] = by_name[stream]["groups"]
        assert by_name[stream]["length"] == 3 and group["pending"] == 1 and group["lag"] == 2
    assert by_name[names.ticks_stream(9)]["owners"]["evaluator"] == "evaluator-1:abc"
    assert by_name[names.triggers_stream(5)]["dead_letters"] == 1
    ticks_total = next(t for t in report["totals"] if t["kind"] == "ticks")
    assert ticks_total["length"] == 48 and ticks_total["groups"][0]["pending"] == 16
    assert (await run_cli("streams", "--consumers", env=env)).exit_code == 0


async def test_health_finds_the_heartbeats_on_every_master(redis_cluster: RedisClient, redis_cluster_url: str) -> None:
    env = {"REDIS_CLUSTER_URL": redis_cluster_url}
    consumers = [f"evaluator-{n}" for n in range(12)]
    for consumer in consumers:
        await beat(redis_cluster, "evaluator", consumer, 30)
    assert len(await _masters_of(redis_cluster, [names.health_key("evaluator", c) for c in consumers])) > 1

    listed = await run_cli("health", "--json", env=env)
    one = await run_cli("health", "evaluator", "--consumer", "evaluator-7", env=env)

    assert sorted(w["consumer"] for w in json_of(listed)["workers"]) == sorted(consumers)
    assert one.exit_code == 0, one.output


async def test_shards_shows_the_leases_taken_on_the_cluster(redis_cluster: RedisClient, redis_cluster_url: str) -> None:
    env = {"REDIS_CLUSTER_URL": redis_cluster_url}
    await redis_cluster.set(names.SHARD_COUNT_KEY, str(COUNT))
    async with replicas(redis_cluster, "ingest", ["ingest-1", "ingest-2"]) as owners:
        await eventually(lambda: all(len(o.owned) == 2 for o in owners), within=10, what="2 + 2 shards")

        result = await run_cli("shards", "--json", env=env)
        held = {o.token: sorted(o.owned) for o in owners}
        assert (await run_cli("shards", env=env)).exit_code == 0

    assert result.exit_code == 0, result.stderr
    report = json_of(result)
    assert report["shard_count"] == COUNT
    assert {row["shard"]: row["leases"]["ingest"]["owner"] for row in report["shards"]} == {
        shard: token for token, shards in held.items() for shard in shards
    }
    assert {m["token"]: m["shards"] for m in report["members"]} == held


async def test_dead_letters_are_listed_and_replayed_per_shard_on_the_cluster(
    redis_cluster: RedisClient, redis_cluster_url: str
) -> None:
    env = {"REDIS_CLUSTER_URL": redis_cluster_url, "SHARDS": "16"}
    streams = [names.triggers_stream(k) for k in (1, 6, 11)]
    assert len(await _masters_of(redis_cluster, streams)) > 1
    for stream in streams:
        await dead_letter_via_consumer(
            redis_cluster, stream, names.GROUP_NOTIFIER, "notifier-a", [trigger_fields(1)], reason="550"
        )

    listed = json_of(await run_cli("dead-letters", "list", "triggers", "--json", env=env))
    assert [letter["stream"] for letter in listed["dead_letters"]] == streams
    one = await run_cli("dead-letters", "replay", "triggers", "--shard", "6", "--json", env=env)
    assert one.exit_code == 0, one.stderr
    assert [done["stream"] for done in json_of(one)["done"]] == [streams[1]]
    everything = await run_cli("dead-letters", "replay", "triggers", "--json", env=env)
    assert json_of(everything)["count"] == 2

    for stream in streams:  # each entry is back on its own shard's stream, its dead letter gone (one MULTI each)
        assert await redis_cluster.xlen(names.dead_letter_stream(stream)) == 0
        assert await redis_cluster.xlen(stream) == 2
