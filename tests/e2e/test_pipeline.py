"""Register, log in, set an alert, trade across it: exactly one email, and the alert shows triggered."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_stack import Stack, eventually_value, stack_environment

from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange() as fake:
        yield fake


@pytest.fixture
async def stack(tmp_path: Path, redis_url: str, database_url: str, smtp_server: MailboxServer,
                exchange: FakeExchange) -> AsyncIterator[Stack]:
    env = stack_environment(tmp_path, redis_url=redis_url, database_url=database_url, smtp_port=smtp_server.port,
                            exchange_ws_url=exchange.ws_url, exchange_rest_url=exchange.rest_url)
    running = Stack(tmp_path, env)
    running.start()
    try:
        await running.wait_ready()
        yield running
    finally:
        codes = running.stop()
        print(running.logs())  # noqa: T201 - pytest shows captured output only when the test fails
        # uvicorn re-raises SIGTERM after its clean shutdown, so the APIs end "killed by SIGTERM".
        assert all(code in (0, -signal.SIGTERM) for code in codes.values()), f"unclean exits: {codes}"


async def create_alert(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """POST /alerts, waiting out the moment before ingest has published the symbol catalog."""
    async def attempt() -> dict[str, Any] | None:
        response = await client.post("/alerts", json=body, headers=headers)
        if response.status_code == 503:
            return None
        assert response.status_code == 201, response.text
        return dict(response.json())

    return dict(await eventually_value(attempt, what="symbol catalog"))


async def test_trade_across_the_target_sends_exactly_one_email(
        stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        registered = await client.post("/auth/register", json={"email": "Ada@Example.com", "password": "s3cret-pass"})
        assert registered.status_code == 201, registered.text
        login = await client.post("/auth/login", json={"email": "ada@example.com", "password": "s3cret-pass"})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        me = await client.get("/auth/me", headers=headers)
        assert me.json()["email"] == "ada@example.com"

        alert = await create_alert(client, headers, {"symbol": "btcusdt", "target_price": "100000",
                                                     "condition": "above", "name": "to the moon"})
        assert alert["status"] == "active" and alert["symbol"] == "BTCUSDT"

        await exchange.wait_for(lambda: "btcusdt@trade" in exchange.subscriptions(), within=10,
                                what="ingest subscribed to btcusdt@trade")
        await exchange.play_trade("BTCUSDT", "99999.99")
        await exchange.play_trade("BTCUSDT", "100012.5")

        async def one_mail() -> bool:
            return len(smtp_server.mails) >= 1

        await eventually_value(one_mail, what="the email")

        async def triggered() -> dict[str, Any] | None:
            body = (await client.get(f"/alerts/{alert['id']}", headers=headers)).json()
            return dict(body) if body["status"] == "triggered" and body["delivery_status"] == "sent" else None

        shown = await eventually_value(triggered, what="alert triggered and sent")
        assert shown["triggered_price"].startswith("100012.5")

        await exchange.play_trade("BTCUSDT", "100100")  # the alert fired once; later trades change nothing
        await asyncio.sleep(1.0)

    [mail] = smtp_server.mails
    assert mail.recipients == ["ada@example.com"]
    assert "BTCUSDT" in mail.message["Subject"] and "100000" in mail.message["Subject"]
    text = mail.text()
    assert "100012.5" in text and "100000" in text and "to the moon" in text
