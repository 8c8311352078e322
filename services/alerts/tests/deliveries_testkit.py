"""Helpers of the delivery log's tests: an alert, its firings on channels, attempts at them, the log read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from alerts_testkit import Tokens
from fastapi import FastAPI

from pricealert.alerts.database import write_session
from pricealert.alerts.models import Channel
from pricealert.alerts.service import AlertService
from pricealert.common.events import (
    Condition,
    DeliveryStatus,
    Frequency,
    NotificationResult,
    Trigger,
    now_ms,
    trigger_id_for,
    utc_now,
)

HOOK = "5f3c2a10-7b1e-4d2a-9c3b-8e4f5a6b7c8d"
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def create(client: httpx.AsyncClient, tokens: Tokens, user: str = "u1") -> dict[str, Any]:
    """A new every_time alert of `user`'s, as the API answers it."""
    payload = {"symbol": "BTCUSDT", "target_price": "100000", "condition": "above", "frequency": "every_time"}
    response = await client.post("/alerts", json=payload, headers=tokens.headers(user))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def firing(alert: dict[str, Any], n: int = 1, channels: str | None = None) -> Trigger:
    """The n-th firing of `alert` on `channels` (None: the account's email), as the evaluator writes it."""
    fired_at = now_ms() + n
    return Trigger(
        trigger_id=trigger_id_for(alert["id"], n, Frequency.EVERY_TIME),
        alert_id=alert["id"],
        user_id="u1",
        email="u1@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        frequency=Frequency.EVERY_TIME,
        target_price=Decimal("100000"),
        cooldown_s=60,
        version=1,
        price=Decimal("100001"),
        trade_id=n,
        exchange_time=fired_at - 5,
        tick_received_at=fired_at - 3,
        fired_at=fired_at,
        firing=n,
        channels=channels,
    )


def attempt(
    trigger: Trigger, channel: str, n: int, status: DeliveryStatus, *, second: int = 0, **extra: Any
) -> NotificationResult:
    """Attempt `n` on `channel` (`email`: the account's), ending `second` s after T0."""
    return NotificationResult(
        trigger_id=trigger.trigger_id,
        alert_id=trigger.alert_id,
        status=status,
        attempts=n,
        occurred_at=T0 + timedelta(seconds=second),
        user_id="u1",
        channel_id=channel,
        channel_kind="email" if channel == "email" else "webhook",
        **extra,
    )


def hook_failure(trigger: Trigger, n: int, status: DeliveryStatus, *, second: int) -> NotificationResult:
    """Attempt `n` on the webhook HOOK answered 500 (retrying: the next one due 2**n s later)."""
    retry = None if status is DeliveryStatus.FAILED else T0 + timedelta(seconds=second + 2**n)
    answer = {"error": "HTTP 500", "reply": "HTTP 500", "http_status": 500, "next_retry_at": retry}
    return attempt(trigger, HOOK, n, status, second=second, **answer)


async def log_of(
    client: httpx.AsyncClient, tokens: Tokens, trigger: Trigger, query: str = "", user: str = "u1"
) -> httpx.Response:
    """GET the delivery log of `trigger`'s firing."""
    path = f"/alerts/{trigger.alert_id}/firings/{trigger.trigger_id}/deliveries{query}"
    return await client.get(path, headers=tokens.headers(user))


async def alert_of(client: httpx.AsyncClient, tokens: Tokens, alert_id: str) -> dict[str, Any]:
    """The alert as GET /alerts/{id} shows it to u1."""
    shown: dict[str, Any] = (await client.get(f"/alerts/{alert_id}", headers=tokens.headers("u1"))).json()
    return shown


def service_of(app: FastAPI) -> AlertService:
    """The app's alert service."""
    service: AlertService = app.state.alerts.service
    return service


async def add_channel(app: FastAPI, channel_id: str = HOOK, *, status: str = "active", **extra: Any) -> Channel:
    """A webhook channel row of u1's (what POST /channels stores)."""
    now = utc_now()
    channel = Channel(
        id=channel_id,
        user_id="u1",
        kind="webhook",
        target="https://hooks.example.com/in/abc",
        status=status,
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        version=1,
        created_at=now,
        updated_at=now,
        **extra,
    )
    async with write_session(app.state.alerts.store.sessions) as session:
        session.add(channel)
    return channel
