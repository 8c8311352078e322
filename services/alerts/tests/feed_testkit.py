"""Helpers of the feed tests: the app served by uvicorn (SSE needs a real server), feed entries, SSE reading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

import uvicorn
from fastapi import FastAPI
from httpx_sse import EventSource, ServerSentEvent

from pricealert.alerts.feedstream import Feeds
from pricealert.alerts.feedwriter import append
from pricealert.common.feed import FeedEvent, FeedEventType
from pricealert.common.redisconn import RedisClient
from pricealert.devstack.ports import free_port


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """`app` (its lifespan already running) served by uvicorn on a free port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def feeds_of(app: FastAPI) -> Feeds:
    """The app's open feeds."""
    feeds: Feeds = app.state.feeds
    return feeds


async def write(redis: RedisClient, user: str, n: int, kind: FeedEventType = FeedEventType.FIRED) -> FeedEvent:
    """Append the n-th test entry to `user`'s feed, as the writer does."""
    event = FeedEvent(
        type=kind,
        source_id=f"a1:{n}",
        alert_id="a1",
        user_id=user,
        symbol="BTCUSDT",
        trigger_id=f"a1:{n}",
        firing=n,
        price=Decimal(100 + n),
        occurred_at=datetime.now(UTC),
    )
    await append(redis, [event])
    return event


async def next_event(events: AsyncIterator[ServerSentEvent], within: float = 5.0) -> ServerSentEvent:
    """The next SSE event (comments are not events), within `within` seconds."""
    async with asyncio.timeout(within):
        return await anext(events)


async def opened(source: EventSource, app: FastAPI, count: int = 1) -> AsyncIterator[ServerSentEvent]:
    """The source's events, once the server holds `count` feeds (so that what is written next is live)."""
    source.response.raise_for_status()
    feeds = feeds_of(app)
    async with asyncio.timeout(5):
        while feeds.open < count:
            await asyncio.sleep(0.01)
    return source.aiter_sse()
