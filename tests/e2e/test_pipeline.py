"""Register, log in, set an alert, trade across it: exactly one email, and the alert shows triggered."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from e2e_stack import Stack, alert_mails, create_alert, register_verified

from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def test_trade_across_the_target_sends_exactly_one_email(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        await register_verified(client, smtp_server, "Ada@Example.com", "s3cret-pass")
        login = await client.post("/auth/login", json={"email": "ada@example.com", "password": "s3cret-pass"})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        me = await client.get("/auth/me", headers=headers)
        assert me.json()["email"] == "ada@example.com"

        alert = await create_alert(
            client,
            headers,
            {"symbol": "btcusdt", "target_price": "100000", "condition": "above", "name": "to the moon"},
        )
        assert alert["status"] == "active" and alert["symbol"] == "BTCUSDT"

        await exchange.wait_for(
            lambda: "btcusdt@trade" in exchange.subscriptions(), within=10, what="ingest subscribed to btcusdt@trade"
        )
        await exchange.play_trade("BTCUSDT", "99999.99")
        await exchange.play_trade("BTCUSDT", "100012.5")

        async def one_mail() -> bool:
            return len(alert_mails(smtp_server)) >= 1

        await eventually(one_mail, within=20, what="the email")

        async def triggered() -> dict[str, Any] | None:
            body = (await client.get(f"/alerts/{alert['id']}", headers=headers)).json()
            return dict(body) if body["status"] == "triggered" and body["delivery_status"] == "sent" else None

        shown = await eventually(triggered, within=20, what="alert triggered and sent")
        assert shown["triggered_price"] == "100012.5"  # the exchange wrote 100012.50000000

        await exchange.play_trade("BTCUSDT", "100100")  # the alert fired once; later trades change nothing
        await asyncio.sleep(1.0)

    [mail] = alert_mails(smtp_server)
    assert mail.recipients == ["ada@example.com"]
    assert "BTCUSDT" in mail.message["Subject"] and "100000" in mail.message["Subject"]
    text = mail.text()
    assert "100012.5" in text and "100000" in text and "to the moon" in text
