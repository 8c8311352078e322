"""Builders for evaluator tests: alert events, ticks on their shard's stream, the shards' triggers, matchers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.events import AlertEvent, AlertEventType, Condition, Tick, Trigger, now_ms, utc_now
from pricealert.common.publisher import publish_many
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.evaluator.handlers import SERVICE
from pricealert.evaluator.matcher import Fired, Matcher

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
