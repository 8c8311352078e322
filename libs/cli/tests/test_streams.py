"""`pricealert streams` against real per-shard streams with real pending entries, lag, dead letters and owners."""

from __future__ import annotations

from typing import Any

import pytest
from cli_testkit import dead_letter_via_consumer, json_of, leave_pending, run_cli, tick_fields, trigger_fields
from redis.asyncio import Redis

from pricealert.cli import streams
from pricealert.common import names
from pricealert.common.shards import shard_of

SHARD = shard_of("BTCUSDT", 16)
TICKS = names.ticks_stream(SHARD)
TRIGGERS = names.triggers_stream(SHARD)


def _stream(report: dict[str, Any], stream: str) -> dict[str, Any]:
    return next(s for s in report["streams"] if s["name"] == stream)


def _group(report: dict[str, Any], stream: str, group: str) -> dict[str, Any]:
    return next(g for g in _stream(report, stream)["groups"] if g["name"] == group)


def _total(report: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(t for t in report["totals"] if t["kind"] == kind)


async def test_streams_json_counts_pending_lag_dead_letters_and_owners_per_shard(
    redis: Redis, cli_env: dict[str, str]
) -> None:
    await leave_pending(redis, TICKS, names.GROUP_EVALUATOR, "evaluator-a", [tick_fields(i) for i in range(7)], read=3)
    await redis.xreadgroup(names.GROUP_EVALUATOR, "evaluator-b", {TICKS: ">"}, count=1)
    other = names.ticks_stream(SHARD + 1)
    await leave_pending(redis, other, names.GROUP_EVALUATOR, "evaluator-a", [tick_fields(i) for i in range(5)], read=2)
    await dead_letter_via_consumer(
        redis,
        TRIGGERS,
        names.GROUP_NOTIFIER,
        "notifier-a",
        [trigger_fields(1), trigger_fields(2)],
        reason="550 no such mailbox",
    )
    await redis.set(names.shard_owner_key("evaluator", SHARD), "evaluator-a:0123", px=9000)

    result = await run_cli("streams", "--json", env=cli_env)

    assert result.exit_code == 0, result.stderr
    report = json_of(result)
    assert report["shard_count"] == 16  # nothing recorded: SHARDS' default
    assert [s["name"] for s in report["streams"]] == streams.known_streams(16)
    ticks = _stream(report, TICKS)
    assert ticks["length"] == 7 and ticks["dead_letters"] == 0 and ticks["shard"] == SHARD and ticks["kind"] == "ticks"
    assert ticks["owners"] == {"evaluator": "evaluator-a:0123", "ingest": None}
    evaluator = _group(report, TICKS, names.GROUP_EVALUATOR)
    assert evaluator["pending"] == 4
    assert evaluator["lag"] == 3 and evaluator["lag_exact"] is True
    consumers = {c["name"]: c["pending"] for c in evaluator["consumers"]}
    assert consumers == {"evaluator-a": 3, "evaluator-b": 1}
    triggers = _stream(report, TRIGGERS)
    assert triggers["dead_letters"] == 2 and triggers["dead_letter_stream"] == f"{TRIGGERS}:dead"
    notifier = _group(report, TRIGGERS, names.GROUP_NOTIFIER)
    assert notifier["pending"] == 0 and notifier["lag"] == 0  # dead-lettered entries are acknowledged
    ticks_total = _total(report, "ticks")
    assert ticks_total["streams"] == 16 and ticks_total["length"] == 12 and ticks_total["dead_letters"] == 0
    assert ticks_total["groups"] == [{"name": "evaluator", "pending": 6, "lag": 6, "lag_exact": True}]
    assert _total(report, "triggers")["dead_letters"] == 2
    missing = _stream(report, names.SYMBOL_CATALOG)
    assert missing == {
        "name": names.SYMBOL_CATALOG,
        "exists": False,
        "length": 0,
        "last_id": None,
        "dead_letter_stream": f"{names.SYMBOL_CATALOG}:dead",
        "dead_letters": 0,
        "groups": [],
        "kind": names.SYMBOL_CATALOG,
        "shard": None,
        "owners": {},
    }


async def test_the_recorded_shard_count_wins_and_filters_narrow_the_report(
    redis: Redis, cli_env: dict[str, str]
) -> None:
    await redis.set(names.SHARD_COUNT_KEY, "4")
    await redis.xadd(names.ticks_stream(2), tick_fields(1))

    result = await run_cli("--shards", "16", "streams", "--kind", "ticks", "--json", env=cli_env)

    report = json_of(result)
    assert report["shard_count"] == 4
    assert [s["name"] for s in report["streams"]] == [names.ticks_stream(k) for k in range(4)]
    one = json_of(await run_cli("streams", "--shard", "2", "--json", env=cli_env))
    assert [s["name"] for s in one["streams"]] == [names.shard_stream(2, kind) for kind in names.SHARDED_STREAM_KINDS]
    assert _total(one, "ticks")["length"] == 1 and _total(one, "triggers")["streams"] == 1


async def test_streams_table_shows_every_stream_group_owner_and_the_totals(
    redis: Redis, cli_env: dict[str, str]
) -> None:
    await leave_pending(
        redis, TRIGGERS, names.GROUP_NOTIFIER, "notifier-a", [trigger_fields(i) for i in range(3)], read=2
    )
    await redis.xgroup_create(TRIGGERS, names.GROUP_INGEST, id="0")
    await redis.set(names.shard_owner_key("ingest", SHARD), "ingest-1:abc", px=9000)

    result = await run_cli("streams", "--consumers", env=cli_env)

    assert result.exit_code == 0, result.stderr
    for kind in names.SHARDED_STREAM_KINDS:
        assert f"{{s15}}:{kind}" in result.stdout
    groups_table, rest = result.stdout.split("\ntotals per kind", 1)
    totals_table, consumers_table = rest.split("\nconsumers", 1)
    rows = {tuple(line.split()) for line in groups_table.splitlines()}
    # stream, length, group, consumers, pending, lag, dead letters, owner; a stream's next groups leave the first two
    # empty; the owner column names the shard's lease holder of the group's service (ingest, evaluator)
    assert (f"{{s{SHARD}}}:triggers", "3", "ingest", "0", "0", "3", "0", "ingest-1:abc") in rows
    assert ("notifier", "1", "2", "1") in rows
    assert (f"{{s{SHARD}}}:ticks", "-", "-", "-", "-", "-", "0") in rows
    total_rows = {tuple(line.split()) for line in totals_table.splitlines()}
    assert ("triggers", "16", "3", "ingest", "0", "3", "0") in total_rows
    assert ("ticks", "16", "0", "-", "-", "-", "0") in total_rows
    consumer_rows = {tuple(line.split()[:4]) for line in consumers_table.splitlines()}
    assert (f"{{s{SHARD}}}:triggers", "notifier", "notifier-a", "2") in consumer_rows


async def test_other_pricealert_streams_are_discovered_but_dead_letter_streams_are_not(redis: Redis) -> None:
    await redis.xadd("pricealert:experiment", {"a": "1"})
    await redis.xadd("pricealert:{s20}:ticks", {"a": "1"})  # a shard of another count (a migration's leftover)
    await redis.xadd(f"{TICKS}:dead", {"a": "1"})
    await redis.xadd("elsewhere:stream", {"a": "1"})

    found = await streams.discover_streams(redis, 16)

    assert found == [*streams.known_streams(16), "pricealert:experiment", "pricealert:{s20}:ticks"]


async def test_lag_is_counted_on_redis_without_lag_and_capped(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await leave_pending(redis, TICKS, names.GROUP_EVALUATOR, "e", [tick_fields(i) for i in range(6)], read=1)

    assert await streams._count_after(redis, TICKS, ids[0]) == (5, True)
    assert await streams._count_after(redis, TICKS, ids[-1]) == (0, True)
    monkeypatch.setattr(streams, "LAG_COUNT_LIMIT", 4)
    assert await streams._count_after(redis, TICKS, ids[0]) == (4, False)
    monkeypatch.setattr(streams, "LAG_COUNT_LIMIT", 5)
    assert await streams._count_after(redis, TICKS, ids[0]) == (5, True)


async def test_redis_away_is_a_clean_error() -> None:
    from pricealert.devstack.ports import free_port

    for env in (
        {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        {"REDIS_CLUSTER_URL": f"redis://127.0.0.1:{free_port()}"},
    ):
        result = await run_cli("streams", env=env)

        assert result.exit_code == 1
        assert "is not reachable" in result.stderr
        assert "Traceback" not in result.output
