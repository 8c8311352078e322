"""Channels through the gateway: a signed webhook and the account's email for one alert, each delivery in the log,
every step in the live feed (a browser's ticket, Server-Sent Events), a webhook that is gone disabling its channel.

Every service runs as its own process; the webhook receiver is a real local HTTP server that verifies the
Standard Webhooks signature with the secret the API showed once, as a receiver would.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from e2e_stack import Stack, alert_mails, create_alert, register_verified
from httpx_sse import aconnect_sse

from pricealert.common.tasks import cancel_and_wait
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually
from pricealert.testsupport.webhooks import Cue, WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PASSWORD = "s3cret-pass"


async def log_in(client: httpx.AsyncClient, mailbox: MailboxServer, email: str) -> dict[str, str]:
    """Register and verify `email`, log in: the Authorization header."""
    await register_verified(client, mailbox, email, PASSWORD)
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def feed_events(client: httpx.AsyncClient, headers: dict[str, str], into: list[dict[str, Any]]) -> None:
    """Open the feed as a browser would (a single-use ticket in the query) from the start of the user's history
    (so nothing is missed however late it connects), and collect its events."""
    ticket = await client.post("/events/ticket", headers=headers)
    assert ticket.status_code == 201, ticket.text
    params = {"ticket": ticket.json()["ticket"], "last_event_id": "0-0"}
    async with aconnect_sse(client, "GET", "/events", params=params, timeout=httpx.Timeout(10, read=60)) as source:
        assert source.response.status_code == 200
        async for event in source.aiter_sse():
            into.append({"event": event.event, "id": event.id, **json.loads(event.data)})


async def watched(stack: Stack, exchange: FakeExchange, alert: dict[str, Any]) -> None:
    """Wait until ingest trades the alert's symbol and the evaluator has indexed the alert."""
    stream = f"{alert['symbol'].lower()}@trade"
    await exchange.wait_for(lambda: stream in exchange.subscriptions(), within=20, what=f"ingest on {stream}")
    log = stack.directory / "evaluator.log"

    def indexed() -> bool:
        return any("alert.indexed" in line and alert["id"] in line for line in log.read_text().splitlines())

    await eventually(indexed, within=20, what=f"the evaluator indexed {alert['id']}")


async def test_an_alert_notifies_its_email_and_its_signed_webhook_and_the_feed_shows_it(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    async with WebhookReceiver() as receiver, httpx.AsyncClient(base_url=stack.url, timeout=20) as client:
        headers = await log_in(client, smtp_server, "hooks@example.com")
        created = await client.post(
            "/channels", headers=headers, json={"kind": "webhook", "name": "bot", "url": receiver.url("/hook")}
        )
        assert created.status_code == 201, created.text
        channel = created.json()
        receiver.secrets.append(channel["secret"])
        assert channel["secret"].startswith("whsec_") and "/hook" not in channel["target"], channel
        shown = await client.get(f"/channels/{channel['id']}", headers=headers)
        assert "secret" not in shown.json() or shown.json()["secret"] is None, shown.text

        tested = await client.post(f"/channels/{channel['id']}/test", headers=headers)
        assert tested.status_code == 200 and tested.json()["delivered"] is True, tested.text
        [test_call] = receiver.requests
        assert test_call.verified and test_call.json()["type"] == "channel.test"

        events: list[dict[str, Any]] = []
        feed = asyncio.create_task(feed_events(client, headers, events))
        try:
            alert = await create_alert(
                client,
                headers,
                {
                    "symbol": "ETHUSDT",
                    "condition": "above",
                    "target_price": "4000",
                    "channels": ["email", channel["id"]],
                },
            )
            assert alert["channels"] == ["email", channel["id"]], alert
            await watched(stack, exchange, alert)
            trade_id = await exchange.play_trade("ETHUSDT", "4001.5")

            async def hooked() -> Any:
                return next((r for r in receiver.requests if r.headers.get("webhook-id") == alert["id"]), None)

            call = await eventually(hooked, within=20, what="the firing's webhook")
            assert call.verified, "the signature verifies with the secret shown at creation"
            body = call.json()
            assert body["type"] == "alert.fired" and body["firing_id"] == alert["id"] == body["alert_id"], body
            assert body["symbol"] == "ETHUSDT" and body["price"] == "4001.5" and body["trade_id"] == trade_id, body
            await eventually(lambda: [m for m in alert_mails(smtp_server) if m.recipients == ["hooks@example.com"]],
                             within=20, what="the alert mail")  # fmt: skip

            async def delivered() -> Any:
                firings = (await client.get(f"/alerts/{alert['id']}/firings", headers=headers)).json()["items"]
                if not firings or firings[0]["delivery_status"] != "sent":
                    return None
                log = await client.get(f"/alerts/{alert['id']}/firings/{firings[0]['id']}/deliveries", headers=headers)
                assert log.status_code == 200, log.text
                return log.json()

            log = await eventually(delivered, within=20, what="every channel delivered")
            assert {c["channel_id"]: c["status"] for c in log["channels"]} == {"email": "sent", channel["id"]: "sent"}
            assert sorted((d["channel_kind"], d["attempt"], d["status"]) for d in log["items"]) == [
                ("email", 1, "sent"),
                ("webhook", 1, "sent"),
            ]
            assert any(d["http_status"] == 200 for d in log["items"]), log

            def seen() -> Any:
                kinds = [e["event"] for e in events if e.get("alert_id") == alert["id"]]
                return kinds if "alert.fired" in kinds and kinds.count("delivery.sent") == 2 else None

            kinds = await eventually(seen, within=20, what="the firing and both deliveries in the feed")
            assert "alert.created" in kinds, kinds
        finally:
            await cancel_and_wait(feed)
        assert len([r for r in receiver.requests if r.headers.get("webhook-id") == alert["id"]]) == 1


async def test_a_webhook_that_answers_410_is_disabled_and_the_firing_says_so(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    async with WebhookReceiver(cue=Cue(status=410)) as receiver, httpx.AsyncClient(base_url=stack.url) as client:
        headers = await log_in(client, smtp_server, "gone@example.com")
        created = await client.post("/channels", headers=headers, json={"kind": "webhook", "url": receiver.url()})
        assert created.status_code == 201, created.text
        channel = created.json()
        alert = await create_alert(
            client,
            headers,
            {"symbol": "BNBUSDT", "condition": "below", "target_price": "100", "channels": [channel["id"]]},
        )
        await watched(stack, exchange, alert)
        await exchange.play_trade("BNBUSDT", "99")

        async def disabled() -> Any:
            shown = (await client.get(f"/channels/{channel['id']}", headers=headers)).json()
            return shown if shown["status"] == "disabled" else None

        shown = await eventually(disabled, within=20, what="the channel disabled after 410")
        assert "410" in (shown["disabled_reason"] or ""), shown
        firing = await eventually(
            lambda: _failed_firing(client, headers, alert["id"]), within=20, what="the firing failed on the webhook"
        )
        assert channel["id"][:8] in firing["delivery_error"] or "410" in firing["delivery_error"], firing
        assert len(receiver.requests) == 1, "410 is not retried"
        resumed = await client.patch(f"/channels/{channel['id']}", headers=headers, json={"status": "active"})
        assert resumed.status_code == 200 and resumed.json()["status"] == "active", resumed.text


async def _failed_firing(client: httpx.AsyncClient, headers: dict[str, str], alert_id: str) -> Any:
    firings = (await client.get(f"/alerts/{alert_id}/firings", headers=headers)).json()["items"]
    return firings[0] if firings and firings[0]["delivery_status"] == "failed" else None
