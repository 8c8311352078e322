"""Builders for evaluator tests: alert events, ticks on their shard's stream, triggers, matchers, drivers."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from pricealert.common import names
from pricealert.common.consumer import Message, StreamConsumer
from pricealert.common.events import AlertEvent, AlertEventType, Condition, Tick, Trigger, now_ms, utc_now
from pricealert.common.publisher import publish_many
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.evaluator.handlers import SERVICE, ticks_consumer
from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.matcher import Fired, Matcher
from pricealert.evaluator.settings import EvaluatorSettings

SHARDS = DEFAULT_SHARDS
TEST_TOKEN = "test-owner"


def tick_stream(symbol: str, count: int = SHARDS) -> str:
    """The ticks stream of `symbol`'s shard."""
    return Tick.stream_of(shard_of(symbol, count))


def events_stream(symbol: str, count: int = SHARDS) -> str:
    """The alert-events stream of `symbol`'s shard."""
    return AlertEvent.stream_of(shard_of(symbol, count))


def alert_event(
    alert_id: str,
    condition: str,
    target: str,
    *,
    symbol: str = "BTCUSDT",
    kind: AlertEventType = AlertEventType.CREATED,
    expires_at: datetime | None = None,
) -> AlertEvent:
    """An alert event as the alerts service publishes it."""
    return AlertEvent(
        type=kind,
        event_id=f"e-{alert_id}-{kind.value}",
        alert_id=alert_id,
        user_id="u1",
        email="u1@example.com",
        symbol=symbol,
        condition=Condition(condition),
        target_price=Decimal(target),
        name=f"alert {alert_id}",
        expires_at=expires_at,
        occurred_at=utc_now(),
    )


async def publish_alert_events(redis: RedisClient, events: Iterable[AlertEvent], count: int = SHARDS) -> None:
    """Publish alert events each on its symbol's shard stream, in order per shard."""
    by_stream: dict[str, list[AlertEvent]] = {}
    for event in events:
        by_stream.setdefault(events_stream(event.symbol, count), []).append(event)
    for stream, batch in by_stream.items():
        await publish_many(redis, stream, batch)


async def ticks_on_stream(
    redis: RedisClient, prices: list[str], *, symbol: str = "BTCUSDT", exchange_time: int | None = None
) -> list[Message]:
    """Append ticks to their shard's real ticks stream (their ids carry Redis's clock) and return them as entries."""
    out = []
    for n, price in enumerate(prices):
        tick = Tick(
            symbol=symbol,
            price=Decimal(price),
            trade_id=n + 1,
            exchange_time=exchange_time or now_ms(),
            received_at=now_ms(),
        )
        entry_id = await redis.xadd(tick_stream(symbol), tick.to_fields())  # type: ignore[arg-type]
        out.append(Message(entry_id.decode(), tick.to_fields()))
    return out


def entry_order(entry_id: bytes) -> tuple[int, int]:
    """A stream entry id as a sortable pair (ms, sequence)."""
    ms, seq = entry_id.split(b"-")
    return int(ms), int(seq)


async def triggers(redis: RedisClient, count: int = SHARDS) -> list[dict[bytes, bytes]]:
    """Every trigger of every shard, by entry id (the order within one shard is exact, across shards by time)."""
    found = []
    for shard in range(count):
        found += await redis.xrange(Trigger.stream_of(shard))
    return [fields for _, fields in sorted(found, key=lambda entry: entry_order(entry[0]))]


async def fired_alert_ids(redis: RedisClient, count: int = SHARDS) -> list[str]:
    """Alert ids of every trigger of every shard (see `triggers` for the order)."""
    return [fields[b"alert_id"].decode() for fields in await triggers(redis, count)]


async def hold_lease(redis: RedisClient, shard: int, token: str = TEST_TOKEN) -> str:
    """Make `token` the holder of `shard`'s evaluator lease (no expiry); returns the owner key."""
    key = names.shard_owner_key(SERVICE, shard)
    await redis.set(key, token)
    return key


class ShardMatchers:
    """A Matcher per shard, each run under a lease this test holds; routes a batch's ticks by their symbol's shard."""

    def __init__(self, redis: RedisClient, count: int = SHARDS, token: str = TEST_TOKEN) -> None:
        self.redis = redis
        self.count = count
        self.token = token
        self.matchers: dict[int, Matcher] = {}

    async def matcher(self, shard: int) -> Matcher:
        """The matcher of `shard`, its lease taken on first use."""
        if shard not in self.matchers:
            key = await hold_lease(self.redis, shard, self.token)
            self.matchers[shard] = Matcher(self.redis, shard=shard, count=self.count, owner_key=key, token=self.token)
        return self.matchers[shard]

    async def fire(self, messages: Sequence[Message]) -> list[Fired]:
        """Evaluate the ticks, one script call per shard (in the order each shard first appears)."""
        batches: dict[int, list[Message]] = {}
        for message in messages:
            symbol = message.raw.get("symbol", message.raw.get(b"symbol", b""))  # type: ignore[call-overload]
            text = symbol.decode() if isinstance(symbol, bytes) else str(symbol)
            batches.setdefault(shard_of(text, self.count), []).append(message)
        fired: list[Fired] = []
        for shard, batch in batches.items():
            fired += await (await self.matcher(shard)).fire(batch)
        return fired

    async def evaluate(self, messages: Sequence[Message]) -> int:
        """How many alerts the ticks fired."""
        return len(await self.fire(messages))


def shard_of_tick(tick: Tick) -> int:
    return shard_of(tick.symbol, SHARDS)


async def drained(redis: RedisClient, stream: str) -> bool:
    """Every entry of `stream` delivered to the evaluator's group and acknowledged."""
    newest = await redis.xrevrange(stream, count=1)
    if not newest:
        return True
    groups = [g for g in await redis.xinfo_groups(stream) if g["name"] == names.GROUP_EVALUATOR.encode()]
    return bool(groups) and groups[0]["last-delivered-id"] == newest[0][0] and groups[0]["pending"] == 0


class MatcherDriver:
    """Events straight into the index, each flush's ticks through one Matcher call per shard."""

    def __init__(self, redis: RedisClient, firings_per_hour: int) -> None:
        self.redis = redis
        self.firings_per_hour = firings_per_hour
        self.index = AlertIndex(redis, SHARDS)
        self.matchers: dict[int, Matcher] = {}
        self.pending: dict[int, list[Message]] = {}

    async def apply(self, event: AlertEvent) -> None:
        await self.index.apply(event)

    async def add(self, tick: Tick) -> None:
        entry = await self.redis.xadd(Tick.stream_of(shard_of_tick(tick)), tick.to_fields())  # type: ignore[arg-type]
        self.pending.setdefault(shard_of_tick(tick), []).append(Message(entry.decode(), tick.to_fields()))

    async def flush(self) -> None:
        for shard, batch in self.pending.items():
            if shard not in self.matchers:
                key = await hold_lease(self.redis, shard)
                self.matchers[shard] = Matcher(
                    self.redis,
                    shard=shard,
                    count=SHARDS,
                    owner_key=key,
                    token=TEST_TOKEN,
                    firings_per_hour=self.firings_per_hour,
                )
            await self.matchers[shard].fire(batch)
        self.pending.clear()


class ReplicaDriver:
    """Events straight into the index; ticks judged by three consumers of each shard's group taking turns.

    One batch at a time, in stream order, as the shard's lease holder of the moment judges them (concurrent or
    read-ahead batches would judge the trades out of order: the conditions of docs/conditions.md depend on it).
    """

    def __init__(
        self, redis: RedisClient, shards: list[int], batch_size: int, firings_per_hour: int, rng: random.Random
    ) -> None:
        self.redis = redis
        self.shards = shards
        self.firings_per_hour = firings_per_hour
        self.index = AlertIndex(redis, SHARDS)
        self.batch_size = batch_size
        self.rng = rng
        self.consumers: list[StreamConsumer] = []

    async def start(self) -> None:
        for shard in self.shards:
            owner_key = await hold_lease(self.redis, shard)
            for n in range(3):
                options = EvaluatorSettings(
                    consumer_name=f"replica-{n}",
                    tick_batch_size=self.batch_size,
                    firings_per_hour=self.firings_per_hour,
                )
                consumer = ticks_consumer(self.redis, options, shard, owner_key=owner_key, token=TEST_TOKEN)
                # an idle replica must not hold up the drain with a long blocking read
                consumer.options = dataclasses.replace(consumer.options, block_ms=5, prefetch=False)
                self.consumers.append(consumer)
            await self.consumers[-1].ensure_group()

    async def apply(self, event: AlertEvent) -> None:
        await self.index.apply(event)

    async def add(self, tick: Tick) -> None:
        await self.redis.xadd(Tick.stream_of(shard_of_tick(tick)), tick.to_fields())  # type: ignore[arg-type]

    async def flush(self) -> None:
        while not all([await drained(self.redis, Tick.stream_of(shard)) for shard in self.shards]):
            for consumer in self.rng.sample(self.consumers, len(self.consumers)):
                await consumer.poll_once()
