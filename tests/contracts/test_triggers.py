"""Contract of the triggers streams: the evaluator's script firing an indexed alert writes what Trigger reads."""

from __future__ import annotations

import re
from decimal import Decimal
from importlib.resources import files

from contracts_testkit import assert_written_as, entries
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.events import (
    AlertEvent,
    AlertEventType,
    Condition,
    Frequency,
    Tick,
    Trigger,
    trigger_id_for,
    utc_now,
)
from pricealert.common.ownership import ShardOwnership
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.evaluator.index import MEMBER_FIELDS, AlertIndex
from pricealert.evaluator.matcher import Matcher
from pricealert.ingest.frames import Trade
from pricealert.ingest.stats import Stats
from pricealert.ingest.tickwriter import TickPipeline

SHARDS = DEFAULT_SHARDS
SHARD = shard_of("BTCUSDT", SHARDS)


def lua_source(name: str) -> str:
    return files("pricealert.evaluator").joinpath("lua", f"{name}.lua").read_text()


def created(alert_id: str, *, name: str | None) -> AlertEvent:
    return AlertEvent(
        type=AlertEventType.CREATED,
        event_id=f"e-{alert_id}",
        alert_id=alert_id,
        user_id="u-7",
        email="trader@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal("100.5"),
        name=name,
        expires_at=None,
        occurred_at=utc_now(),
    )


async def test_a_fired_alert_is_a_trigger_that_trigger_reads(redis: Redis) -> None:
    owner_key = names.shard_owner_key("evaluator", SHARD)
    await redis.set(owner_key, "contract")
    index = AlertIndex(redis, SHARDS)
    matcher = Matcher(redis, shard=SHARD, count=SHARDS, owner_key=owner_key, token="contract")
    await index.apply(created("a-1", name="my alert"))
    await index.apply(created("a-2", name=None))
    ingest = ShardOwnership(redis, service="ingest", consumer="contract", count=SHARDS)
    ingest.owned |= await ingest.try_take(SHARDS)
    writer = TickPipeline(redis, Stats(), ownership=ingest, queue_size=10, batch_size=10, dedupe_window=10)
    await writer.publish([Trade("BTCUSDT", Decimal("101.25"), 42, 1777807004058, 1777807004060)])
    ticks = [Message(entry_id.decode(), fields) for entry_id, fields in await redis.xrange(Tick.stream_of(SHARD))]
    fired = await matcher.fire(ticks)
    raw = await entries(redis, Trigger.stream_of(SHARD))
    assert [f.alert_id for f in fired] == ["a-1", "a-2"]
    for entry in raw:
        assert_written_as(Trigger, entry)
    first, second = (Trigger.from_fields(entry) for entry in raw)
    assert first.trigger_id == trigger_id_for(first.alert_id) == trigger_id_for("a-1")
    assert second.trigger_id == trigger_id_for("a-2") and second.name is None
    assert first.model_dump(exclude={"fired_at"}) == {
        "trigger_id": trigger_id_for("a-1"),
        "alert_id": "a-1",
        "user_id": "u-7",
        "email": "trader@example.com",
        "symbol": "BTCUSDT",
        "condition": Condition.ABOVE,
        "target_price": Decimal("100.5"),
        "name": "my alert",
        "price": Decimal("101.25"),
        "trade_id": 42,
        "exchange_time": 1777807004058,
        "tick_received_at": 1777807004060,
        **dict.fromkeys(
            (
                "low",
                "high",
                "percent",
                "window",
                "cooldown_s",
                "message",
                "reference_price",
                "change_pct",
                "hour_firings",
                "channels",
            )
        ),
        "frequency": Frequency.ONCE,
        "version": 1,
        "firing": 1,
        "paused": False,
    }


def test_the_trigger_script_writes_trigger_fields_with_the_trigger_id_rule() -> None:
    xadd = re.search(
        r"redis\.call\('XADD', S\.triggers, 'MAXLEN', '~', S\.maxlen, '\*',(.*?)\)\n", lua_source("fire"), re.S
    )
    assert xadd is not None
    pairs = re.findall(r"'(\w+)', ([\w.]+)", xadd.group(1))
    assert tuple(name for name, _ in pairs) == Trigger.FIELDS
    assert all(value == f"f.{name}" for name, value in pairs)
    # trigger_id_for: a once alert's is its alert id, a recurring one's "<alert id>:<n>", as the script builds them.
    source = lua_source("fire")
    assert trigger_id_for("a-1") == "a-1" and "trigger_id = a.alert_id" in source
    assert trigger_id_for("a-1", 3, Frequency.EVERY_TIME) == "a-1:3"
    assert "trigger_id = every and (d.id .. ':' .. d.k) or d.id" in source


def test_the_member_script_parses_the_member_fields() -> None:
    source = lua_source("member")
    parse = re.search(r"local ([\w, ]+) =\s+string\.match\(unparked\(member\), '(.*)'\)", source)
    assert parse is not None
    assert tuple(parse.group(1).split(", ")) == MEMBER_FIELDS
    assert parse.group(2).count("(") == len(MEMBER_FIELDS)
    table = re.search(r"return \{(.*?)\}", source, re.S)
    assert table is not None
    assert tuple(re.findall(r"(\w+) =", table.group(1))) == MEMBER_FIELDS


async def test_an_indexed_member_holds_the_member_fields(redis: Redis) -> None:
    event = created("a-3", name="tab\there")
    await AlertIndex(redis, SHARDS).apply(event)
    [member] = await redis.zrange(names.eval_above_key(SHARD, "BTCUSDT"), 0, -1)
    values = dict(zip(MEMBER_FIELDS, member.decode().split("\t"), strict=True))
    assert values["alert_id"] == "a-3" and int(values["indexed_at"]) > 0
    assert (values["user_id"], values["email"], values["condition"]) == ("u-7", "trader@example.com", "above")
    assert (values["target_price"], values["expires_at"], values["name"]) == ("100.5", "", "tab here")
