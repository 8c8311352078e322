"""Fixtures of the notifier tests: notifier replicas running as tasks of the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from channel_delivery_testkit import SECRET
from notifier_testkit import Replica, StartNotifier
from redis.asyncio import Redis

from pricealert.notifier.settings import NotifierSettings
from pricealert.testsupport.webhooks import WebhookReceiver


@pytest.fixture
async def notifier(redis: Redis) -> AsyncIterator[StartNotifier]:
    """Start a notifier replica with the given settings; every replica is stopped after the test."""
    replicas: list[Replica] = []

    def start(settings: NotifierSettings) -> Replica:
        replicas.append(Replica(redis, settings))
        return replicas[-1]

    yield start
    await asyncio.gather(*(replica.stop() for replica in replicas))


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A local webhook receiver that verifies signatures made with channel_delivery_testkit.SECRET."""
    async with WebhookReceiver(secrets=[SECRET]) as r:
        yield r
