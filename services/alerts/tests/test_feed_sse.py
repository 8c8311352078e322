"""GET /events served for real: live events, resume with Last-Event-ID, tickets, isolation, heartbeats, caps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, running
from fastapi import FastAPI
from feed_testkit import feeds_of, next_event, opened, served, write
from httpx_sse import aconnect_sse
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The feed does not touch the database: one backend is enough."""
    return sqlite_url


@pytest.fixture
async def feed_app(settings: AlertsSettings) -> AsyncIterator[FastAPI]:
    """The app with a fast heartbeat and at most two feeds per user; its worker off (the tests write the feeds)."""
    fast = settings.model_copy(
        update={
            "feed_ping_s": 0.5,
            "feed_max_per_user": 2,
            "relay_enabled": False,
            "consumers_enabled": False,
            "expiry_enabled": False,
            "feed_writer_enabled": False,
        }
    )
    async with running(fast) as application:
        yield application


@pytest.fixture
async def http(feed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app served by uvicorn."""
    async with served(feed_app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


def data(event: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(event.data)
    return parsed


async def test_live_events_then_resume_after_a_disconnect_gets_exactly_the_missed_ones(
    http: httpx.AsyncClient, feed_app: FastAPI, tokens: Tokens, redis: Redis
) -> None:
    await write(redis, "u1", 0)  # before the connection: not sent (without Last-Event-ID only new events)
    async with aconnect_sse(http, "GET", "/events", headers=tokens.headers("u1")) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = await opened(source, feed_app)
        await write(redis, "u1", 1)
        first = await next_event(events)
        assert (first.event, data(first)["source_id"], data(first)["price"]) == ("alert.fired", "a1:1", "101")
        assert data(first)["user_id"] == "u1" and first.id
    await eventually(lambda: feeds_of(feed_app).open == 0, what="the feed closed")

    await write(redis, "u1", 2)
    await write(redis, "u1", 3)
    headers = {**tokens.headers("u1"), "Last-Event-ID": first.id}
    async with aconnect_sse(http, "GET", "/events", headers=headers) as source:
        events = await opened(source, feed_app)
        missed = [await next_event(events), await next_event(events)]
        assert [data(e)["source_id"] for e in missed] == ["a1:2", "a1:3"]
        await write(redis, "u1", 4)
        assert data(await next_event(events))["source_id"] == "a1:4"  # nothing twice, nothing else in between


async def test_an_id_older_than_the_history_kept_is_a_gap_then_everything_kept(
    http: httpx.AsyncClient, feed_app: FastAPI, tokens: Tokens, redis: Redis
) -> None:
    for n in (1, 2, 3):
        await write(redis, "u1", n)
    oldest = (await redis.xrange(names.feed_stream("u1"), count=1))[0][0].decode()
    await redis.xtrim(names.feed_stream("u1"), maxlen=1, approximate=False)
    headers = {**tokens.headers("u1"), "Last-Event-ID": oldest}
    async with aconnect_sse(http, "GET", "/events", headers=headers) as source:
        events = await opened(source, feed_app)
        gap = await next_event(events)
        assert gap.event == "feed.gap" and data(gap)["last_event_id"] == oldest
        assert data(await next_event(events))["source_id"] == "a1:3"


async def test_another_users_events_never_appear(
    http: httpx.AsyncClient, feed_app: FastAPI, tokens: Tokens, redis: Redis
) -> None:
    async with aconnect_sse(http, "GET", "/events", headers=tokens.headers("u1")) as source:
        events = await opened(source, feed_app)
        await write(redis, "u2", 1)
        await write(redis, "u1", 2)
        event = await next_event(events)
        assert (data(event)["user_id"], data(event)["source_id"]) == ("u1", "a1:2")


async def test_a_ticket_opens_one_feed_once_and_expires(
    http: httpx.AsyncClient, feed_app: FastAPI, tokens: Tokens, redis: Redis
) -> None:
    answer = await http.post("/events/ticket", headers=tokens.headers("u1"))
    assert answer.status_code == 201, answer.text
    ticket = answer.json()["ticket"]
    assert answer.json()["expires_in"] == 30 and len(ticket) >= 43
    async with aconnect_sse(http, "GET", "/events", params={"ticket": ticket}) as source:
        events = await opened(source, feed_app)
        await write(redis, "u1", 1)
        first = await next_event(events)
        assert data(first)["user_id"] == "u1"
    resumed = (await http.post("/events/ticket", headers=tokens.headers("u1"))).json()["ticket"]
    await write(redis, "u1", 2)
    params = {"ticket": resumed, "last_event_id": first.id}
    async with aconnect_sse(http, "GET", "/events", params=params) as source:  # a browser's new EventSource
        events = await opened(source, feed_app)
        assert data(await next_event(events))["source_id"] == "a1:2"
    again = await http.get("/events", params={"ticket": ticket})
    assert (again.status_code, again.json()["error"]["code"]) == (401, "invalid_ticket")

    expiring = (await http.post("/events/ticket", headers=tokens.headers("u1"))).json()["ticket"]
    keys = [key async for key in redis.scan_iter(match=names.feed_ticket_key("*"))]
    assert len(keys) == 1 and 25 <= await redis.ttl(keys[0]) <= 30
    assert not any(expiring.encode() in key for key in keys)  # only its hash is kept
    await redis.pexpire(keys[0], 1)
    await asyncio.sleep(0.05)
    late = await http.get("/events", params={"ticket": expiring})
    assert (late.status_code, late.json()["error"]["code"]) == (401, "invalid_ticket")
    assert (await http.get("/events", params={"ticket": "made-up"})).status_code == 401
    assert (await http.post("/events/ticket")).status_code == 401


async def test_refusals_tokens_in_the_url_bad_ids_and_too_many_feeds(
    http: httpx.AsyncClient, feed_app: FastAPI, tokens: Tokens
) -> None:
    token = tokens.make("u1")
    for name in ("access_token", "token"):
        answer = await http.get("/events", params={name: token})
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "token_in_url")
    bad = await http.get("/events", headers={**tokens.headers("u1"), "Last-Event-ID": "yesterday"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_last_event_id")
    assert (await http.get("/events")).json()["error"]["code"] == "not_authenticated"

    async with (
        aconnect_sse(http, "GET", "/events", headers=tokens.headers("u1")),
        aconnect_sse(http, "GET", "/events", headers=tokens.headers("u1")),
    ):
        third = await http.get("/events", headers=tokens.headers("u1"))
        assert (third.status_code, third.json()["error"]["code"]) == (429, "too_many_feeds")
        async with aconnect_sse(http, "GET", "/events", headers=tokens.headers("u2")) as other:
            assert other.response.status_code == 200  # the cap is per user
    await eventually(lambda: feeds_of(feed_app).open == 0, what="every feed closed")


async def test_heartbeats_arrive_while_nothing_happens(http: httpx.AsyncClient, tokens: Tokens) -> None:
    async with http.stream("GET", "/events", headers=tokens.headers("u1")) as response:
        assert response.status_code == 200
        async with asyncio.timeout(3):
            lines = response.aiter_lines()
            while not (line := await anext(lines)).startswith(":"):
                pass
        assert "ping" in line


async def test_closing_the_client_releases_the_feed_and_its_redis_connection(
    http: httpx.AsyncClient, feed_app: FastAPI, tokens: Tokens, redis: Redis
) -> None:
    feeds = feeds_of(feed_app)

    async def blocked_feed_reads() -> int:
        clients = await redis.client_list()
        return sum(1 for c in clients if c["cmd"] == "xread" and "b" in c["flags"])

    async with aconnect_sse(http, "GET", "/events", headers=tokens.headers("u1")) as source:
        await opened(source, feed_app)
        await eventually(blocked_feed_reads, what="the feed's blocking read")
        assert REGISTRY.get_sample_value("pricealert_alerts_feeds_open") == 1
    await eventually(lambda: feeds.open == 0, what="the feed's slot freed")
    assert REGISTRY.get_sample_value("pricealert_alerts_feeds_open") == 0
    await eventually(lambda: not feeds.redis.connection_pool._in_use_connections, what="the connection released")

    async def no_blocked_read() -> bool:
        return await blocked_feed_reads() == 0

    await eventually(no_blocked_read, what="no blocked read left")


async def test_both_routes_are_in_the_openapi(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert "text/event-stream" in paths["/events"]["get"]["responses"]["200"]["content"]
    assert "201" in paths["/events/ticket"]["post"]["responses"]
