"""`pricealert dead-letters list|replay|drop` on dead letters written by the real consumer loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from cli_testkit import dead_letter_via_consumer, json_of, run_cli, tick_fields, trigger_fields
from redis.asyncio import Redis

from pricealert.cli.deadletters import list_dead_letters
from pricealert.cli.streams import UnknownStream, resolve_streams
from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, PermanentError, StreamConsumer
from pricealert.common.shards import shard_of

SHARD = shard_of("BTCUSDT", 16)  # the symbol of the testkit's ticks and triggers
TRIGGERS = names.triggers_stream(SHARD)
TICKS = names.ticks_stream(SHARD)
DEAD = names.dead_letter_stream(TRIGGERS)


async def _entries(redis: Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    raw: Any = await redis.xrange(stream)
    return [(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in raw]


async def _three_dead_triggers(redis: Redis) -> list[str]:
    await dead_letter_via_consumer(
        redis,
        TRIGGERS,
        names.GROUP_NOTIFIER,
        "notifier-a",
        [trigger_fields(i) for i in range(3)],
        reason="550 mailbox unavailable",
    )
    return [i for i, _ in await _entries(redis, DEAD)]


def test_stream_names_resolve_from_kinds_shards_full_and_dead_letter_forms() -> None:
    assert resolve_streams("triggers", SHARD, 16) == [TRIGGERS]
    assert resolve_streams("triggers", None, 3) == [names.triggers_stream(k) for k in range(3)]
    assert resolve_streams(TRIGGERS, None, 16) == [TRIGGERS]
    assert resolve_streams(DEAD, SHARD, 16) == [TRIGGERS]
    assert resolve_streams(f"{{s{SHARD}}}:triggers", None, 16) == [TRIGGERS]
    assert resolve_streams("notification-results", 2, 16) == [names.notification_results_stream(2)]
    assert resolve_streams("{auth}:account-events:dead", None, 16) == [names.ACCOUNT_EVENTS]
    for wrong in (("triggers", 16, 16), (TRIGGERS, SHARD + 1, 16), ("symbol-catalog", 0, 16)):
        with pytest.raises(UnknownStream):
            resolve_streams(*wrong)


async def test_a_shard_out_of_range_is_a_usage_error(cli_env: dict[str, str]) -> None:
    result = await run_cli("dead-letters", "list", "triggers", "--shard", "16", env=cli_env)

    assert result.exit_code == 2 and "shard 16 does not exist" in result.stderr


async def test_list_separates_original_fields_from_the_failure(redis: Redis, cli_env: dict[str, str]) -> None:
    originals = await dead_letter_via_consumer(
        redis,
        TRIGGERS,
        names.GROUP_NOTIFIER,
        "notifier-a",
        [trigger_fields(1), trigger_fields(2)],
        reason="550 no such user",
    )

    result = await run_cli("dead-letters", "list", "triggers", "--json", env=cli_env)

    assert result.exit_code == 0, result.stderr
    letters = json_of(result)["dead_letters"]
    assert [letter["fields"] for letter in letters] == [trigger_fields(1), trigger_fields(2)]
    first = letters[0]["failure"]
    assert first["stream"] == TRIGGERS and first["entry_id"] == originals[0]
    assert first["group"] == names.GROUP_NOTIFIER and first["consumer"] == "notifier-a"
    assert first["reason"] == "PermanentError: 550 no such user" and first["deliveries"] == "1"
    assert int(first["failed_at"]) > 0

    assert all(letter["stream"] == TRIGGERS for letter in letters)  # found among every shard's dead letters
    one_shard = await run_cli("dead-letters", "list", "triggers", "--shard", str(SHARD), "--json", env=cli_env)
    assert json_of(one_shard)["stream"] == TRIGGERS and json_of(one_shard)["dead_letters"] == letters
    other_shard = await run_cli("dead-letters", "list", "triggers", "--shard", str(SHARD + 1), "--json", env=cli_env)
    assert json_of(other_shard)["dead_letters"] == []

    table = await run_cli("dead-letters", "list", DEAD, "--count", "1", env=cli_env)
    assert table.exit_code == 0, table.stderr
    assert "550 no such user" in table.stdout and "trigger_id=trigger-1" in table.stdout
    assert "trigger-2" not in table.stdout


async def test_replay_all_puts_the_original_fields_back_and_a_consumer_handles_them(
    redis: Redis, cli_env: dict[str, str]
) -> None:
    await _three_dead_triggers(redis)
    before = await redis.xlen(TRIGGERS)

    result = await run_cli("dead-letters", "replay", "triggers", "--json", env=cli_env)

    assert result.exit_code == 0, result.stderr
    assert json_of(result)["count"] == 3
    assert await redis.xlen(DEAD) == 0
    replayed = (await _entries(redis, TRIGGERS))[before:]
    assert [fields for _, fields in replayed] == [trigger_fields(i) for i in range(3)]
    assert [done["new_id"] for done in json_of(result)["done"]] == [i for i, _ in replayed]
    assert {done["stream"] for done in json_of(result)["done"]} == {TRIGGERS}

    # The notifier group sees the replayed entries as new and, now healthy, handles and acks them.
    handled: list[str] = []

    async def accept(messages: Sequence[Message]) -> None:
        handled.extend(m.fields["trigger_id"] for m in messages)

    consumer = StreamConsumer(
        redis, ConsumerOptions(TRIGGERS, names.GROUP_NOTIFIER, "notifier-b", service="notifier"), accept
    )
    await consumer.poll_once()
    assert handled == ["trigger-0", "trigger-1", "trigger-2"]
    pending: Any = await redis.xpending(TRIGGERS, names.GROUP_NOTIFIER)
    assert pending["pending"] == 0


async def test_replay_one_id_leaves_the_others_and_reports_unknown_ids(redis: Redis, cli_env: dict[str, str]) -> None:
    dead_ids = await _three_dead_triggers(redis)

    result = await run_cli(
        "dead-letters", "replay", "triggers", "--id", dead_ids[1], "--id", "1-1", "--json", env=cli_env
    )

    assert result.exit_code == 1  # one id was not found
    outcome = json_of(result)
    assert [done["id"] for done in outcome["done"]] == [dead_ids[1]] and outcome["missing"] == ["1-1"]
    assert [i for i, _ in await _entries(redis, DEAD)] == [dead_ids[0], dead_ids[2]]
    assert (await _entries(redis, TRIGGERS))[-1][1] == trigger_fields(1)


async def test_replay_of_a_dead_tick_goes_back_to_the_ticks_stream(redis: Redis, cli_env: dict[str, str]) -> None:
    await dead_letter_via_consumer(
        redis, TICKS, names.GROUP_EVALUATOR, "evaluator-a", [tick_fields(5)], reason="bad price"
    )

    result = await run_cli("dead-letters", "replay", "ticks", env=cli_env)

    assert result.exit_code == 0, result.stderr
    assert "1 dead letter(s) of pricealert:ticks replayed" in result.stdout  # every shard's ticks
    assert f"({TICKS})" in result.stdout
    assert (await _entries(redis, TICKS))[-1][1] == tick_fields(5)


async def test_drop_by_id_and_drop_all(redis: Redis, cli_env: dict[str, str]) -> None:
    dead_ids = await _three_dead_triggers(redis)
    length = await redis.xlen(TRIGGERS)

    one = await run_cli("dead-letters", "drop", "triggers", "--id", dead_ids[0], env=cli_env)
    assert one.exit_code == 0, one.stderr
    assert [i for i, _ in await _entries(redis, DEAD)] == dead_ids[1:]

    refused = await run_cli("dead-letters", "drop", "triggers", env=cli_env, input="n\n")
    assert refused.exit_code == 1
    assert await redis.xlen(DEAD) == 2

    everything = await run_cli("dead-letters", "drop", "triggers", "--yes", "--json", env=cli_env)
    assert everything.exit_code == 0, everything.stderr
    assert json_of(everything)["count"] == 2
    assert await redis.xlen(DEAD) == 0
    assert await redis.xlen(TRIGGERS) == length  # dropping never touches the original stream


async def test_replay_all_takes_only_what_was_there_when_it_started(redis: Redis, cli_env: dict[str, str]) -> None:
    """A poison entry that fails again during a replay is not replayed in an endless loop."""
    await _three_dead_triggers(redis)
    stop = asyncio.Event()

    async def refuse_again(messages: Sequence[Message]) -> None:
        from pricealert.common.consumer import PermanentError

        raise PermanentError("still broken")

    consumer = StreamConsumer(
        redis,
        ConsumerOptions(TRIGGERS, names.GROUP_NOTIFIER, "notifier-c", service="notifier", block_ms=20),
        refuse_again,
    )
    running = asyncio.create_task(consumer.run(stop))
    try:
        result = await run_cli("dead-letters", "replay", "triggers", "--json", env=cli_env)
    finally:
        stop.set()
        await running
    assert result.exit_code == 0, result.stderr
    assert json_of(result)["count"] == 3


async def test_hostile_entries_are_listed_readably_replayed_byte_for_byte_or_refused_when_cut(
    redis: Redis, cli_env: dict[str, str]
) -> None:
    binary = {b"trigger_id": b"t-\xff", b"\x80name": b"v", b"dl_reason": b"forged", b"note": b"\x1b[31mred"}
    cut = {b"trigger_id": b"t-big", b"name": b"x" * (1 << 20)}
    stream = TRIGGERS
    ids = [(await redis.xadd(stream, entry)).decode() for entry in (binary, cut)]  # type: ignore[arg-type]

    async def refuse(messages: Sequence[Message]) -> None:
        raise PermanentError("no")

    consumer = StreamConsumer(redis, ConsumerOptions(stream, names.GROUP_NOTIFIER, "n", service="notifier"), refuse)
    await consumer.ensure_group()
    await consumer.poll_once()
    listed = await run_cli("dead-letters", "list", "triggers", "--json", env=cli_env)
    assert listed.exit_code == 0, listed.stderr
    first, second = json_of(listed)["dead_letters"]
    assert first["fields"]["trigger_id"].startswith("b64:") and first["fields"]["note"] == "\x1b[31mred"
    assert first["failure"]["reason"] == "PermanentError: no" and first["failure"]["entry_id"] == ids[0]
    assert "1048576 bytes" in second["failure"]["truncated"]
    table = await run_cli("dead-letters", "list", "triggers", env=cli_env)
    assert table.exit_code == 0 and "\x1b" not in table.stdout and "\\x1b[31mred" in table.stdout

    replayed = await run_cli("dead-letters", "replay", "triggers", "--json", env=cli_env)

    assert replayed.exit_code == 1  # one was refused
    outcome = json_of(replayed)
    [done], [refused] = outcome["done"], outcome["refused"]
    assert done["id"] == first["id"] and refused["id"] == second["id"] and "truncated" in refused["why"]
    raw: Any = await redis.xrange(stream, done["new_id"], done["new_id"])
    assert raw[0][1] == binary  # the very bytes that failed, not their encoded text
    assert [letter.id for letter in await list_dead_letters(redis, [stream])] == [second["id"]]
