"""The live feed through the gateways (nginx on compose's template, and the development gateway): each event
arrives as it happens, not buffered."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from alerts_testkit import Tokens, running
from fastapi import FastAPI
from feed_testkit import feeds_of, next_event, opened, served, write
from httpx_sse import aconnect_sse
from redis.asyncio import Redis

from pricealert.alerts.settings import AlertsSettings
from pricealert.devstack.gateway import GatewaySettings, create_app
from pricealert.devstack.ports import free_port
from pricealert.testsupport.nginx import Nginx, nginx_binary
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The feed does not touch the database: one backend is enough."""
    return sqlite_url


@pytest.fixture
async def feed_app(settings: AlertsSettings) -> AsyncIterator[FastAPI]:
    """The app alone (the test writes the feed), with the default 15 s heartbeat: no ping flushes an event out."""
    quiet = settings.model_copy(update={"relay_enabled": False, "consumers_enabled": False, "expiry_enabled": False})
    async with running(quiet) as application:
        yield application


@pytest.fixture
async def upstream(feed_app: FastAPI) -> AsyncIterator[str]:
    """The app served by uvicorn: its host:port."""
    async with served(feed_app) as url:
        yield url.removeprefix("http://")


@pytest.fixture
def gateway(upstream: str, tmp_path: Path) -> Iterator[Nginx]:
    """nginx on the gateway template, the alerts upstream being the app (the others point nowhere)."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed")
    nowhere = f"127.0.0.1:{free_port()}"
    nginx = Nginx(
        binary,
        tmp_path / "nginx",
        free_port(),
        {"AUTH_UPSTREAM": nowhere, "ALERTS_UPSTREAM": upstream, "DOCS_UPSTREAM": nowhere},
    )
    nginx.write_config()
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr
    nginx.start()
    try:
        yield nginx
    finally:
        nginx.stop()


@pytest.fixture
async def dev_gateway(upstream: str) -> AsyncIterator[str]:
    """The development gateway in front of the app: its URL."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    app = create_app(GatewaySettings(auth_url=nowhere, alerts_url=f"http://{upstream}"))
    async with served(app) as url:  # type: ignore[arg-type]  # a Starlette app, served alike
        yield url


async def test_events_pass_nginx_as_they_happen(
    gateway: Nginx, feed_app: FastAPI, tokens: Tokens, redis: Redis
) -> None:
    headers = await events_pass(gateway.url, feed_app, tokens, redis)
    assert "x-accel-buffering" not in headers  # nginx's own business, acted on and kept


async def test_events_pass_the_development_gateway_as_they_happen(
    dev_gateway: str, feed_app: FastAPI, tokens: Tokens, redis: Redis
) -> None:
    await events_pass(dev_gateway, feed_app, tokens, redis)
    await eventually(lambda: feeds_of(feed_app).open == 0, what="the upstream feed closed with the client's")


async def events_pass(base_url: str, feed_app: FastAPI, tokens: Tokens, redis: Redis) -> httpx.Headers:
    """A ticket, then a feed whose two events each arrive within a second of being written; its headers."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        ticket = (await client.post("/events/ticket", headers=tokens.headers("u1"))).json()["ticket"]
        async with aconnect_sse(client, "GET", "/events", params={"ticket": ticket}) as source:
            headers = source.response.headers
            events = await opened(source, feed_app)
            for n in (1, 2):
                written = time.monotonic()
                await write(redis, "u1", n)
                event = await next_event(events, within=2.0)
                assert json.loads(event.data)["source_id"] == f"a1:{n}"
                assert time.monotonic() - written < 1.0  # one small event, alone: nothing held it back
    return headers
