"""Register, get the verification mail, fire an alert while unverified (no mail, and the alert says why), verify
through the link, fire another: exactly one alert mail. Every service a process, a real SMTP server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_stack import Stack, alert_mails, create_alert, token_of, verification_link
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

EMAIL, PASSWORD = "grace@example.com", "s3cret-pass"


async def fire(
    client: httpx.AsyncClient, exchange: FakeExchange, redis: Redis, headers: dict[str, str], target: str, price: str
) -> dict[str, Any]:
    """Create an `above` alert on ETHUSDT, trade across it, and return the alert once its delivery is settled."""
    alert = await create_alert(client, headers, {"symbol": "ETHUSDT", "target_price": target, "condition": "above"})
    # The symbol may still be subscribed for the alert before: wait for the evaluator too, or the trade can
    # reach it before the alert does (a trade before the alert is in the index fires nothing, by design).
    await eventually(lambda: _indexed(redis, alert["id"]), within=20, what="the alert in the evaluator's index")
    await exchange.wait_for(lambda: "ethusdt@trade" in exchange.subscriptions(), within=10, what="ingest on ethusdt")
    await exchange.play_trade("ETHUSDT", price)

    async def settled() -> dict[str, Any] | None:
        body = dict((await client.get(f"/alerts/{alert['id']}", headers=headers)).json())
        return body if body["status"] == "triggered" and body["delivery_status"] != "pending" else None

    return dict(await eventually(settled, within=20, what="the alert triggered and its delivery settled"))


async def _indexed(redis: Redis, alert_id: str) -> bool:
    # The stack runs the default shard count; ETHUSDT's index lives in its shard.
    members = await redis.zrange(names.eval_above_key(shard_of("ETHUSDT", DEFAULT_SHARDS), "ETHUSDT"), 0, -1)
    return any(alert_id in member for member in members)


async def test_no_alert_mail_until_the_address_is_verified_then_exactly_one(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    redis = Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client, redis:
        registered = await client.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert registered.status_code == 202 and registered.json()["status"] == "verification_sent", registered.text
        link = await verification_link(smtp_server, EMAIL)
        assert link.startswith(f"{stack.url}/#/verify?token=")  # the page: the token never reaches a server log
        token = token_of(link)
        assert [m.message["X-Pricealert-Verify-Token"] for m in smtp_server.mails] == [token]

        login = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await client.get("/auth/me", headers=headers)).json()["email_verified"] is False

        unverified = await fire(client, exchange, redis, headers, target="3000", price="3001")
        assert unverified["delivery_status"] == "failed"
        assert unverified["delivery_error"].startswith("email_not_verified:")
        assert alert_mails(smtp_server) == []

        verified = await client.post("/auth/verify", json={"token": token})  # what the link's page does
        assert verified.status_code == 200 and verified.json()["status"] == "verified", verified.text
        assert (await client.get("/auth/me", headers=headers)).json()["email_verified"] is True
        again = await client.get("/auth/verify", params={"token": token})  # the curl route, through the gateway
        assert again.json()["status"] == "already_verified"

        after = await fire(client, exchange, redis, headers, target="3100", price="3101")
        assert after["delivery_status"] == "sent"
        before = (await client.get(f"/alerts/{unverified['id']}", headers=headers)).json()
        assert before["delivery_status"] == "failed"  # the mail the first alert did not get is not sent later

    [mail] = alert_mails(smtp_server)
    assert mail.recipients == [EMAIL] and "3100" in mail.message["Subject"]
    assert str(mail.message["Message-ID"]).startswith("<trigger.")
    assert [m.recipients for m in smtp_server.mails] == [[EMAIL], [EMAIL]]  # the link, then the one alert mail
