"""`python -m pricealert.ingest` runs as its own process, writes its heartbeat and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
from ingest_testkit import emit_alert, read_ticks, shard
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.devstack.ports import free_port
from pricealert.testsupport.polling import eventually


async def test_process_ingests_and_stops_on_sigterm(redis: Redis, redis_url: str, exchange: FakeExchange) -> None:
    metrics_port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "BINANCE_WS_URL": exchange.ws_url,
        "BINANCE_REST_URL": exchange.rest_url,
        "CONSUMER_NAME": "ingest-proc",
        "LOG_LEVEL": "WARNING",
        "INGEST_METRICS_PORT": str(metrics_port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pricealert.ingest"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
        await eventually(lambda: exchange.subscriptions() == {"btcusdt@trade"}, within=8.0, what="subscribed")
        trade = await exchange.play_trade("BTCUSDT", "65000.5")
        ticks = await eventually(lambda: read_ticks(redis), what="tick")
        assert ticks[0].trade_id == trade
        assert await redis.exists(names.health_key("ingest", "ingest-proc"))
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert "pricealert_ingest_published_total 1.0" in metrics
        assert "pricealert_ingest_subscribed_streams 1.0" in metrics
        stream = AlertEvent.stream_of(shard("BTCUSDT"))
        assert f'pricealert_stream_entries_handled_total{{group="ingest",stream="{stream}"}} 1.0' in metrics
        assert "pricealert_ingest_owned_shards 16.0" in metrics
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(process.communicate, timeout=10)
        assert process.returncode == 0, output.decode()[-2000:]
        await eventually(lambda: not exchange.open_sessions(), what="connection closed")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
