"""Edits, pauses and recurring alerts in ingest's registry: a paused alert stops counting without a tombstone, a later
version brings it back, a recurring alert's firings keep it, and a change read late never undoes a newer one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest_testkit import Ingest, alert_event, emit_alert, emit_trigger, make_trigger, shard
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import Received
from pricealert.common.events import AlertEvent, AlertEventType, Frequency, Trigger
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.ingest.subscriptions import SymbolRegistry
from pricealert.testsupport.polling import eventually

Start = Callable[..., Ingest]
SYMBOL = "BTCUSDT"
CREATED, UPDATED, DELETED = AlertEventType.CREATED, AlertEventType.UPDATED, AlertEventType.DELETED
RECURRING: dict[str, Any] = {"frequency": Frequency.EVERY_TIME, "cooldown_s": 60}


def event(kind: AlertEventType, alert_id: str = "a", **facts: Any) -> Received[AlertEvent]:
    """An event of a recurring alert on SYMBOL, as the consumer hands it over."""
    e = alert_event(kind, alert_id, SYMBOL, **(RECURRING | facts))
    return Received("1-0", e, e.to_fields())


def firing(n: int, alert_id: str = "a", **facts: Any) -> Received[Trigger]:
    """Firing `n` of a recurring alert on SYMBOL."""
    t = make_trigger(alert_id, SYMBOL, f"{alert_id}:{n}", firing=n, **(RECURRING | facts))
    return Received("1-0", t, t.to_fields())


async def counted(redis: Redis) -> set[bytes]:
    """The alert ids that keep SYMBOL subscribed."""
    return set(await redis.smembers(names.ingest_symbol_key(shard(SYMBOL), SYMBOL)))


async def consumed(redis: Redis, stream: str) -> bool:
    """Whether ingest's group has read and acknowledged every entry of `stream`."""
    groups = await redis.xinfo_groups(stream)
    return bool(groups) and groups[0]["lag"] == 0 and groups[0]["pending"] == 0


def registry_on(redis: Redis) -> SymbolRegistry:
    return SymbolRegistry(redis, shards=16, gone_ttl_s=60)


async def test_a_paused_update_stops_counting_without_a_tombstone_and_an_active_one_resumes(redis: Redis) -> None:
    registry = registry_on(redis)
    await registry.handle_alert_events([event(CREATED)])
    await registry.handle_alert_events([event(UPDATED, version=2, paused=True)])
    assert await counted(redis) == set() and await registry.symbols() == set()
    assert await redis.zscore(names.ingest_gone_key(shard(SYMBOL)), "a") is None
    await registry.handle_alert_events([event(UPDATED, version=3)])
    assert await counted(redis) == {b"a"} and await registry.symbols() == {SYMBOL}


async def test_a_recurring_alerts_firings_keep_it_until_one_pauses_it(redis: Redis) -> None:
    registry = registry_on(redis)
    await registry.handle_alert_events([event(CREATED), event(CREATED, "b")])
    await registry.handle_triggers([firing(1), firing(2), firing(1, "b")])
    assert await counted(redis) == {b"a", b"b"}
    await registry.handle_triggers([firing(3, paused=True)])
    assert await counted(redis) == {b"b"}
    await registry.handle_alert_events([event(UPDATED, version=2)])  # PATCH {"status": "active"}
    assert await counted(redis) == {b"a", b"b"}


async def test_a_once_alert_that_was_edited_is_gone_when_it_fires(redis: Redis) -> None:
    registry = registry_on(redis)
    await registry.handle_alert_events([event(CREATED, frequency=Frequency.ONCE, cooldown_s=None)])
    await registry.handle_alert_events([event(UPDATED, version=2, frequency=Frequency.ONCE, cooldown_s=None)])
    trigger = make_trigger("a", SYMBOL, "a", version=2)
    await registry.handle_triggers([Received("1-0", trigger, trigger.to_fields())])
    assert await counted(redis) == set()
    await registry.handle_alert_events([event(UPDATED, version=2, frequency=Frequency.ONCE, cooldown_s=None)])
    assert await counted(redis) == set()  # tombstoned: a redelivered update does not revive it


async def test_a_pause_read_before_the_version_it_paused_wins(redis: Redis) -> None:
    registry = registry_on(redis)
    # The evaluator fired version 1 to its hourly limit before ingest read the alert's events.
    await registry.handle_triggers([firing(60, paused=True)])
    await registry.handle_alert_events([event(CREATED)])
    assert await counted(redis) == set()
    await registry.handle_alert_events([event(UPDATED, version=2, paused=True), event(UPDATED, version=2)])
    assert await counted(redis) == set()  # the active copy of version 2 is older than its pause
    await registry.handle_alert_events([event(UPDATED, version=3)])
    assert await counted(redis) == {b"a"}


async def test_a_pause_read_after_a_newer_version_is_ignored(redis: Redis) -> None:
    registry = registry_on(redis)
    await registry.handle_alert_events([event(CREATED), event(UPDATED, version=2)])
    await registry.handle_triggers([firing(60, paused=True, version=1)])  # the triggers stream lagged
    assert await counted(redis) == {b"a"}
    await registry.handle_alert_events([event(UPDATED, version=2)])  # redelivered
    assert await counted(redis) == {b"a"}


async def test_a_paused_alert_that_is_deleted_stays_gone_and_leaves_no_version(redis: Redis) -> None:
    registry = registry_on(redis)
    versions = names.ingest_versions_key(shard(SYMBOL))
    await registry.handle_alert_events([event(CREATED), event(CREATED, "b")])
    assert await redis.zcard(versions) == 0  # first definitions are not recorded
    await registry.handle_triggers([firing(9, paused=True)])
    assert await redis.zscore(versions, "a") == 3
    await registry.handle_alert_events([event(DELETED)])
    assert await redis.zscore(versions, "a") is None
    await registry.handle_alert_events([event(UPDATED, version=4), event(CREATED)])
    assert await counted(redis) == {b"b"}


async def test_ingest_follows_pause_and_resume_on_the_streams(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest()
    alert_id = await emit_alert(redis, CREATED, "SOLUSDT", **RECURRING)
    await eventually(lambda: exchange.subscriptions() == {"solusdt@trade"}, what="subscribed")
    await emit_trigger(redis, alert_id, "SOLUSDT", trigger_id=f"{alert_id}:1", **RECURRING)
    await eventually(lambda: consumed(redis, Trigger.stream_of(shard("SOLUSDT"))), what="firing read")
    synced = ingest.service.sync.synced
    await eventually(lambda: ingest.service.sync.synced > synced + 1)
    assert exchange.subscriptions() == {"solusdt@trade"}  # a recurring alert stays after it fired
    await emit_trigger(redis, alert_id, "SOLUSDT", trigger_id=f"{alert_id}:2", firing=2, paused=True, **RECURRING)
    await eventually(lambda: not exchange.subscriptions(), what="paused: unsubscribed")
    await emit_alert(redis, UPDATED, "SOLUSDT", alert_id, version=2, **RECURRING)
    await eventually(lambda: exchange.subscriptions() == {"solusdt@trade"}, what="resumed")
