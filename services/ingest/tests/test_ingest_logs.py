"""Ingest names the alert (and trigger) on the INFO line of every change to its symbol set; metrics settings."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import structlog
from ingest_testkit import make_trigger
from redis.asyncio import Redis

from pricealert.common.consumer import Received
from pricealert.common.events import AlertEvent, AlertEventType, Condition, Trigger
from pricealert.ingest.settings import IngestSettings
from pricealert.ingest.subscriptions import SymbolRegistry


def alert_message(kind: AlertEventType, alert_id: str, symbol: str) -> Received[AlertEvent]:
    event = AlertEvent(
        type=kind,
        event_id=uuid.uuid4().hex,
        alert_id=alert_id,
        user_id="u1",
        email="u@example.com",
        symbol=symbol,
        condition=Condition.ABOVE,
        target_price=Decimal("1"),
        occurred_at=datetime.now(UTC),
    )
    return Received("1-0", event, event.to_fields())


def trigger_message(trigger_id: str, alert_id: str, symbol: str) -> Received[Trigger]:
    trigger = make_trigger(alert_id, symbol, trigger_id)
    return Received("1-0", trigger, trigger.to_fields())


def info_lines(logs: list[MutableMapping[str, Any]]) -> list[tuple[str, str | None, str | None, str]]:
    return [(e["event"], e.get("alert_id"), e.get("trigger_id"), e["symbol"]) for e in logs if e["log_level"] == "info"]


async def test_symbol_set_changes_are_logged_with_the_alert_id(redis: Redis) -> None:
    registry = SymbolRegistry(redis, shards=16, gone_ttl_s=60)
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await registry.handle_alert_events(
            [
                alert_message(AlertEventType.CREATED, "a1", "btcusdt"),
                alert_message(AlertEventType.CREATED, "a2", "BTCUSDT"),
                alert_message(AlertEventType.CREATED, "a3", "ETHUSDT"),
            ]
        )
        await registry.handle_alert_events([alert_message(AlertEventType.DELETED, "a1", "BTCUSDT")])
        await registry.handle_triggers([trigger_message("t2", "a2", "BTCUSDT")])
        await registry.handle_alert_events([alert_message(AlertEventType.EXPIRED, "a3", "ETHUSDT")])
    assert info_lines(logs) == [
        ("ingest.symbol.subscribed", "a1", None, "BTCUSDT"),
        ("ingest.symbol.subscribed", "a3", None, "ETHUSDT"),
        # a1 leaving changes nothing: a2 still wants BTCUSDT
        ("ingest.symbol.unsubscribed", "a2", "t2", "BTCUSDT"),
        ("ingest.symbol.unsubscribed", "a3", None, "ETHUSDT"),
    ]
    assert structlog.contextvars.get_contextvars().get("alert_id") is None  # nothing leaks past the handler


def test_metrics_port_is_the_common_setting_and_the_old_name_still_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METRICS_HOST", "METRICS_PORT", "INGEST_METRICS_HOST", "INGEST_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert IngestSettings(_env_file=None).metrics_port == 0
    monkeypatch.setenv("METRICS_HOST", "0.0.0.0")
    monkeypatch.setenv("METRICS_PORT", "9100")
    settings = IngestSettings(_env_file=None)
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9100)
    monkeypatch.setenv("INGEST_METRICS_PORT", "9200")
    assert IngestSettings(_env_file=None).metrics_port == 9200
