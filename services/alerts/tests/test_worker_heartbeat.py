"""The alerts worker keeps its heartbeat whichever loops it runs (compose's health check reads it)."""

from __future__ import annotations

import pytest
from alerts_testkit import worker_running
from redis.asyncio import Redis

from pricealert.alerts.handlers import SERVICE
from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.testsupport.polling import eventually


@pytest.mark.parametrize("consumers", [True, False], ids=["with-consumers", "relay-only"])
async def test_the_worker_beats(settings: AlertsSettings, redis: Redis, consumers: bool) -> None:
    settings = settings.model_copy(update={"consumers_enabled": consumers, "consumer_name": "beat-1"})
    key = names.health_key(SERVICE, "beat-1")

    async def beating() -> bool:
        return bool(await redis.exists(key))

    async with worker_running(settings):
        await eventually(beating, within=10, what=f"heartbeat {key}")
    assert 0 < await redis.ttl(key) <= 30
