"""`pricealert streams` against real streams with real pending entries, lag and dead letters."""

from __future__ import annotations

import pytest
from cli_testkit import dead_letter_via_consumer, json_of, leave_pending, run_cli, tick_fields, trigger_fields
from redis.asyncio import Redis

from pricealert.cli import streams
from pricealert.common import names


def _group(report: dict[str, object], stream: str, group: str) -> dict[str, object]:
    entry = next(s for s in report["streams"] if s["name"] == stream)  # type: ignore[attr-defined]
    return next(g for g in entry["groups"] if g["name"] == group)


async def test_streams_json_counts_pending_lag_and_dead_letters(redis: Redis, cli_env: dict[str, str]) -> None:
    await leave_pending(
        redis, names.TICKS, names.GROUP_EVALUATOR, "evaluator-a", [tick_fields(i) for i in range(7)], read=3
    )
    await redis.xreadgroup(names.GROUP_EVALUATOR, "evaluator-b", {names.TICKS: ">"}, count=1)
    await dead_letter_via_consumer(
        redis,
        names.TRIGGERS,
        names.GROUP_NOTIFIER,
        "notifier-a",
        [trigger_fields(1), trigger_fields(2)],
        reason="550 no such mailbox",
    )

    result = await run_cli("streams", "--json", env=cli_env)

    assert result.exit_code == 0, result.stderr
    report = json_of(result)
    assert [s["name"] for s in report["streams"]][: len(streams.KNOWN_STREAMS)] == list(streams.KNOWN_STREAMS)
    ticks = next(s for s in report["streams"] if s["name"] == names.TICKS)
    assert ticks["length"] == 7 and ticks["dead_letters"] == 0
    evaluator = _group(report, names.TICKS, names.GROUP_EVALUATOR)
    assert evaluator["pending"] == 4
    assert evaluator["lag"] == 3 and evaluator["lag_exact"] is True
    consumers = {c["name"]: c["pending"] for c in evaluator["consumers"]}  # type: ignore[attr-defined]
    assert consumers == {"evaluator-a": 3, "evaluator-b": 1}
    triggers = next(s for s in report["streams"] if s["name"] == names.TRIGGERS)
    assert triggers["dead_letters"] == 2 and triggers["dead_letter_stream"] == f"{names.TRIGGERS}:dead"
    notifier = _group(report, names.TRIGGERS, names.GROUP_NOTIFIER)
    assert notifier["pending"] == 0 and notifier["lag"] == 0  # dead-lettered entries are acknowledged
    missing = next(s for s in report["streams"] if s["name"] == names.SYMBOL_CATALOG)
    assert missing == {
        "name": names.SYMBOL_CATALOG,
        "exists": False,
        "length": 0,
        "last_id": None,
        "dead_letter_stream": f"{names.SYMBOL_CATALOG}:dead",
        "dead_letters": 0,
        "groups": [],
    }


async def test_streams_table_shows_every_stream_and_group(redis: Redis, cli_env: dict[str, str]) -> None:
    await leave_pending(
        redis, names.TRIGGERS, names.GROUP_NOTIFIER, "notifier-a", [trigger_fields(i) for i in range(3)], read=2
    )
    await redis.xgroup_create(names.TRIGGERS, names.GROUP_ALERTS, id="0")

    result = await run_cli("streams", "--consumers", env=cli_env)

    assert result.exit_code == 0, result.stderr
    for stream in streams.KNOWN_STREAMS:
        assert stream.removeprefix("pricealert:") in result.stdout
    groups_table, consumers_table = result.stdout.split("\nconsumers", 1)
    rows = {tuple(line.split()) for line in groups_table.splitlines()}
    # stream, length, group, consumers, pending, lag, dead letters; a stream's next groups leave the first two empty
    assert ("triggers", "3", "alerts", "0", "0", "3", "0") in rows
    assert ("notifier", "1", "2", "1") in rows
    assert ("ticks", "-", "-", "-", "-", "-", "0") in rows
    consumer_rows = {tuple(line.split()[:4]) for line in consumers_table.splitlines()}
    assert ("triggers", "notifier", "notifier-a", "2") in consumer_rows


async def test_other_pricealert_streams_are_discovered_but_dead_letter_streams_are_not(redis: Redis) -> None:
    await redis.xadd("pricealert:experiment", {"a": "1"})
    await redis.xadd(f"{names.TICKS}:dead", {"a": "1"})
    await redis.xadd("elsewhere:stream", {"a": "1"})

    found = await streams.discover_streams(redis)

    assert found == [*streams.KNOWN_STREAMS, "pricealert:experiment"]


async def test_lag_is_counted_on_redis_without_lag_and_capped(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await leave_pending(
        redis, names.TICKS, names.GROUP_EVALUATOR, "e", [tick_fields(i) for i in range(6)], read=1
    )

    assert await streams._count_after(redis, names.TICKS, ids[0]) == (5, True)
    assert await streams._count_after(redis, names.TICKS, ids[-1]) == (0, True)
    monkeypatch.setattr(streams, "LAG_COUNT_LIMIT", 4)
    assert await streams._count_after(redis, names.TICKS, ids[0]) == (4, False)
    monkeypatch.setattr(streams, "LAG_COUNT_LIMIT", 5)
    assert await streams._count_after(redis, names.TICKS, ids[0]) == (5, True)


async def test_redis_away_is_a_clean_error() -> None:
    from pricealert.devstack.ports import free_port

    result = await run_cli("streams", env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})

    assert result.exit_code == 1
    assert "is not reachable" in result.stderr
    assert "Traceback" not in result.output
