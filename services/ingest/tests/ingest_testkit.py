"""Helpers of the ingest tests: an in-process worker, event publishers, polling."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pricealert.common.events import AlertEvent, AlertEventType, Condition, Tick, Trigger
from pricealert.common.publisher import publish
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.devstack.fakeexchange import ClientSession, FakeExchange
from pricealert.ingest.handlers import IngestService
from pricealert.ingest.settings import IngestSettings


class Ingest:
    """An ingest worker running in a task of the test's loop."""

    def __init__(self, service: IngestService) -> None:
        self.service = service
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(service.run(self.stop_event))

    async def stop(self) -> None:
        """Stop the worker and wait for it (bounded)."""
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)


def shard(symbol: str, shards: int = DEFAULT_SHARDS) -> int:
    """The shard of `symbol` (the tests run with the default shard count unless they say otherwise)."""
    return shard_of(symbol.strip().upper(), shards)


async def emit_alert(
    redis: RedisClient,
    kind: AlertEventType,
    symbol: str,
    alert_id: str | None = None,
    shards: int = DEFAULT_SHARDS,
    **facts: Any,
) -> str:
    """Publish an alert event to its symbol's shard stream, as the alerts service would; returns the alert id."""
    event = alert_event(kind, alert_id or uuid.uuid4().hex, symbol, **facts)
    await publish(redis, AlertEvent.stream_of(shard(symbol, shards)), event)
    return event.alert_id


def alert_event(kind: AlertEventType, alert_id: str, symbol: str, **facts: Any) -> AlertEvent:
    """An event of an above-1 alert; `facts` (version, paused, frequency, ...) override its fields."""
    values: dict[str, Any] = {
        "type": kind,
        "event_id": uuid.uuid4().hex,
        "alert_id": alert_id,
        "user_id": "u1",
        "email": "u@example.com",
        "symbol": symbol,
        "condition": Condition.ABOVE,
        "target_price": Decimal("1"),
        "occurred_at": datetime.now(UTC),
    }
    return AlertEvent(**(values | facts))


def make_trigger(alert_id: str, symbol: str, trigger_id: str | None = None, **facts: Any) -> Trigger:
    """A trigger of `alert_id` on `symbol`, as the evaluator writes one; `facts` override its fields."""
    values: dict[str, Any] = {
        "trigger_id": trigger_id or uuid.uuid4().hex,
        "alert_id": alert_id,
        "user_id": "u1",
        "email": "u@example.com",
        "symbol": symbol,
        "condition": Condition.ABOVE,
        "target_price": Decimal("1"),
        "price": Decimal("2"),
        "trade_id": 1,
        "exchange_time": 1,
        "tick_received_at": 1,
        "fired_at": 1,
    }
    return Trigger(**(values | facts))


async def emit_trigger(
    redis: RedisClient, alert_id: str, symbol: str, shards: int = DEFAULT_SHARDS, **facts: Any
) -> None:
    """Publish a trigger to its symbol's shard stream, as the evaluator would."""
    await publish(redis, Trigger.stream_of(shard(symbol, shards)), make_trigger(alert_id, symbol, **facts))


async def read_shard_ticks(redis: RedisClient, shard: int) -> list[Tick]:
    """Every tick on one shard's ticks stream, oldest first."""
    return [Tick.from_fields(fields) for _id, fields in await redis.xrange(Tick.stream_of(shard))]


async def read_ticks(redis: RedisClient, shards: int = DEFAULT_SHARDS) -> list[Tick]:
    """Every tick on every shard's ticks stream, by receive time."""
    ticks = [tick for k in range(shards) for tick in await read_shard_ticks(redis, k)]
    return sorted(ticks, key=lambda tick: (tick.received_at, tick.trade_id))


def make_settings(exchange: FakeExchange, redis_url: str, **overrides: Any) -> IngestSettings:
    """Test settings, with `overrides` by field name."""
    values: dict[str, Any] = {
        "binance_ws_url": exchange.ws_url,
        "binance_rest_url": exchange.rest_url,
        "redis_url": redis_url,
        "consumer_name": "ingest-test",
        "reconnect_first_delay_s": 0.05,
        "control_messages_per_s": 4.0,
        "stats_interval_s": 3600.0,
        "resync_s": 0.5,
    }
    values.update(overrides)
    return IngestSettings(**values)


def max_messages_per_second(session: ClientSession) -> int:
    """The most frames a client sent within any 1 s window."""
    times = [r.at for r in session.received]
    return max((sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times)), default=0)


def spawn_ingest(exchange: FakeExchange, redis_url: str, name: str, **env: str) -> subprocess.Popen[bytes]:
    """`python -m pricealert.ingest` as its own process (a replica), with `env` on top of the test settings."""
    variables = {
        **os.environ,
        "REDIS_URL": redis_url,
        "BINANCE_WS_URL": exchange.ws_url,
        "BINANCE_REST_URL": exchange.rest_url,
        "CONSUMER_NAME": name,
        "LOG_LEVEL": "WARNING",
        "INGEST_RECONNECT_FIRST_DELAY_S": "0.05",
        "INGEST_CONTROL_MESSAGES_PER_S": "4.0",
        "INGEST_RESYNC_S": "0.5",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pricealert.ingest"], env=variables, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
