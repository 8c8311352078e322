"""Several writers and several relays on one database stay correct."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from alerts_testkit import Tokens, alert_events
from fastapi import FastAPI
from redis.asyncio import Redis

from pricealert.alerts.auth import User
from pricealert.alerts.maintenance import prepare
from pricealert.alerts.outbox import OutboxRelay
from pricealert.alerts.schemas import AlertCreate
from pricealert.alerts.settings import AlertsSettings
from pricealert.alerts.state import build_state, close_state

pytestmark = pytest.mark.usefixtures("catalog")


async def test_concurrent_creates_respect_the_limit(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    app.state.alerts.service.max_active_per_user = 5
    headers = tokens.headers("u1")
    responses = await asyncio.gather(
        *(
            client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": str(i + 1)}, headers=headers)
            for i in range(12)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 5 + [409] * 7
    listed = await client.get("/alerts", params={"status": "active"}, headers=headers)
    assert listed.json()["total"] == 5


async def test_competing_relays_publish_each_event_once_in_order(
    settings: AlertsSettings, tokens: Tokens, redis: Redis
) -> None:
    quiet = settings.model_copy(update={"relay_enabled": False, "consumers_enabled": False, "expiry_enabled": False})
    state = build_state(quiet)
    await prepare(state)
    try:
        user = User(id="u1", email="u1@example.com")
        created = [
            await state.service.create(user, AlertCreate(symbol="ETHUSDT", target_price=str(i + 1))) for i in range(60)
        ]
        relays = [OutboxRelay(state.store, state.redis, shards=quiet.shards, batch_size=7) for _ in range(3)]

        async def drain_all(relay: OutboxRelay) -> None:
            for _ in range(40):
                await relay.relay_once()

        await asyncio.gather(*(drain_all(r) for r in relays))
        assert sum([await r.drain() for r in relays]) == 0
        events = await alert_events(redis)
        assert [e.alert_id for e in events] == [a.id for a in created]
    finally:
        await close_state(state)
