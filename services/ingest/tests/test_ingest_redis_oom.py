"""Ingest under Redis at maxmemory with noeviction (writes refused with OOM): it backs off and says why, keeps the
trades it could not write, and publishes them once memory is freed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from ingest_testkit import Ingest, emit_alert, read_ticks
from redis.asyncio import Redis
from structlog.testing import capture_logs

from pricealert.common.events import AlertEventType
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.testsupport.polling import eventually


@pytest.fixture
def redis_url(own_redis_url: str) -> str:
    """A Redis of this test's own: its maxmemory must not reach the session's."""
    return own_redis_url


async def test_trades_wait_out_a_full_redis_and_are_published_after(
    redis: Redis, exchange: FakeExchange, start_ingest: Callable[..., Ingest]
) -> None:
    ingest = start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await eventually(lambda: exchange.subscribers("btcusdt@trade"), what="subscribed")
    played = [await exchange.play_trade("BTCUSDT", "1")]
    await eventually(lambda: read_ticks(redis), what="the first tick")
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", "1")  # below what is in use: every write is refused
    with capture_logs() as logs:
        played += [await exchange.play_trade("BTCUSDT", "2"), await exchange.play_trade("BTCUSDT", "3")]
        await asyncio.sleep(1.5)
    assert not ingest.task.done(), ingest.task
    assert any("maxmemory" in str(e.get("error", "")) for e in logs if e["log_level"] == "warning"), logs
    assert len(await read_ticks(redis)) == 1
    await redis.config_set("maxmemory", "0")
    await eventually(lambda: _published(redis, 3), within=15, what="every trade published after")
    assert [t.trade_id for t in await read_ticks(redis)] == played


async def _published(redis: Redis, count: int) -> bool:
    return len(await read_ticks(redis)) >= count
