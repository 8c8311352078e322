"""Fixtures of the ingest tests: the real fake exchange, the real Redis, an ingest worker running in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from ingest_testkit import Ingest, make_settings, max_messages_per_second
from redis.asyncio import Redis

from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.ingest.handlers import IngestService
from pricealert.ingest.settings import IngestSettings


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    """A fresh fake exchange on a free port; afterwards, checks that ingest kept Binance's rules."""
    async with FakeExchange() as fake:
        yield fake
    for session in fake.sessions:
        assert max_messages_per_second(session) <= 5, f"connection {session.id} sent over 5 messages/s"
        assert session.close_code != 1008, f"connection {session.id} was closed for breaking a limit"
        assert len(session.streams) <= 1024
    assert len(fake.attempts) <= 30, "too many connection attempts for one test"


@pytest.fixture
def settings(exchange: FakeExchange, redis_url: str) -> IngestSettings:
    """Ingest settings pointing at the fake exchange and the test Redis, with fast retries."""
    return make_settings(exchange, redis_url)


@pytest.fixture
async def start_ingest(redis: Redis, settings: IngestSettings) -> AsyncIterator[Callable[..., Ingest]]:
    """Start ingest workers (default settings, or given ones); all are stopped after the test."""
    running: list[Ingest] = []

    def start(custom: IngestSettings | None = None) -> Ingest:
        ingest = Ingest(IngestService(custom or settings, redis))
        running.append(ingest)
        return ingest

    yield start
    for ingest in running:
        if not ingest.task.done():
            await ingest.stop()
