"""A running evaluator process: /metrics counts ticks, triggers and index changes; its log names the alert."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from evaluator_testkit import SHARDS, alert_event, events_stream, fired_alert_ids, tick_stream
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEventType, Tick, now_ms
from pricealert.common.publisher import publish_many
from pricealert.common.shards import shard_of
from pricealert.devstack.ports import free_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.testsupport.polling import eventually

TICKS, EVENTS = tick_stream("BTCUSDT"), events_stream("BTCUSDT")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.timeout(60)
async def test_metrics_endpoint_counts_what_the_evaluator_did(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "evaluator.log"
    process = ServiceProcess(
        "evaluator",
        {"REDIS_URL": redis_url, "CONSUMER_NAME": "ev-metrics", "LOG_LEVEL": "INFO", "METRICS_PORT": str(port)},
        log_path=log_path,
    ).start()
    try:

        async def ticks_group_exists() -> bool:
            return bool(await redis.exists(TICKS)) and any(
                g["name"] == b"evaluator" for g in await redis.xinfo_groups(TICKS)
            )

        await eventually(ticks_group_exists, within=20)
        await publish_many(
            redis,
            EVENTS,
            [
                alert_event("m-above", "above", "100"),
                alert_event("m-gone", "above", "500"),
                alert_event("m-gone", "above", "500", kind=AlertEventType.DELETED),
            ],
        )

        async def indexed() -> bool:
            return bool(await redis.zcard(names.eval_above_key(shard_of("BTCUSDT", SHARDS), "BTCUSDT")) == 1)

        await eventually(indexed, within=20)
        ticks = [
            Tick(symbol="BTCUSDT", price=Decimal(p), trade_id=n, exchange_time=now_ms(), received_at=now_ms())
            for n, p in enumerate(["99", "99.5", "101", "102", "98"])
        ]
        await publish_many(redis, TICKS, ticks)

        async def fired() -> bool:
            return bool(await fired_alert_ids(redis) == ["m-above"])

        await eventually(fired, within=20)
        async with httpx.AsyncClient() as client:

            async def counted() -> bool:
                scrape = samples((await client.get(f"http://127.0.0.1:{port}/metrics")).text)
                return scrape.get(("pricealert_evaluator_ticks_total", frozenset()), 0) >= len(ticks)

            await eventually(counted, within=20)
            scrape = samples((await client.get(f"http://127.0.0.1:{port}/metrics")).text)
    finally:
        assert process.stop() == 0
    assert scrape[("pricealert_evaluator_ticks_total", frozenset())] == len(ticks)
    assert scrape[("pricealert_evaluator_triggers_total", frozenset())] == 1
    assert scrape[("pricealert_evaluator_index_changes_total", frozenset({("kind", "created")}))] == 2
    assert scrape[("pricealert_evaluator_index_changes_total", frozenset({("kind", "deleted")}))] == 1
    assert scrape[("pricealert_evaluator_batch_duration_seconds_count", frozenset())] >= 1
    ticks_group = frozenset({("stream", TICKS), ("group", "evaluator")})
    events_group = frozenset({("stream", EVENTS), ("group", "evaluator")})
    assert scrape[("pricealert_stream_entries_handled_total", ticks_group)] == len(ticks)
    assert scrape[("pricealert_stream_entries_handled_total", events_group)] == 3
    assert ("pricealert_stream_group_pending", ticks_group) in scrape
    log = log_path.read_text()
    [fired_line] = [line for line in log.splitlines() if "trigger.fired" in line]
    assert "alert_id=m-above" in fired_line and "trigger_id=m-above" in fired_line and "price=101" in fired_line
    assert "metrics.server.started" in log
