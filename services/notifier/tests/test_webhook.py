"""The webhook sender against a real local receiver: the signed contract, and each kind of answer sorted right."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook
from webhook_testkit import channel, firing, new_secret, settings

from pricealert.common.channels import ChannelSecret, ChannelTestRequest
from pricealert.notifier import webhookpayload
from pricealert.notifier.sender import SendFailed
from pricealert.notifier.webhook import BODY_CAP, WebhookSender
from pricealert.testsupport.webhooks import Cue, WebhookReceiver

SECRET = new_secret()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(secrets=[SECRET]) as r:
        yield r


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    s = WebhookSender(settings(webhook_timeout_s=1.0))
    yield s
    await s.close()


async def test_a_firing_is_signed_and_carries_the_firing(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    receiver.cue = Cue(status=204)
    payload = webhookpayload.firing_payload(firing(7), "BTC is up")
    delivered = await sender.send(channel(receiver.url(), ChannelSecret(secret=SECRET)), "t7", payload)

    assert (delivered.reply, delivered.http_status) == ("HTTP 204", 204)
    [got] = receiver.requests
    assert got.method == "POST" and got.path == "/hook"
    assert got.verified_by == (SECRET,)
    assert Webhook(SECRET).verify(got.body, got.headers) == payload  # as a receiver checks it, the body parsed
    assert got.headers["webhook-id"] == "t7"
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 5
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "pricealert-webhooks/1"
    assert got.json() == {
        "type": "alert.fired",
        "firing_id": "t7",
        "alert_id": "a1",
        "firing": 1,
        "symbol": "BTCUSDT",
        "condition": "above",
        "target_price": "100000",
        "low": None,
        "high": None,
        "percent": None,
        "window": None,
        "price": "100012.5",
        "trade_id": 42,
        "exchange_time": "2026-05-03T11:16:44.059Z",
        "fired_at": "2026-05-03T11:16:44.071Z",
        "name": "moon",
        "message": "BTC is up",
        "change_pct": None,
    }


async def test_a_rotated_secret_signs_too_until_it_expires(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    old, expired = new_secret(), new_secret()
    now_ms = int(time.time() * 1000)
    spec = channel(
        receiver.url(),
        ChannelSecret(secret=SECRET),
        ChannelSecret(secret=old, valid_until_ms=now_ms + 3_600_000),
        ChannelSecret(secret=expired, valid_until_ms=now_ms - 1),
    )
    receiver.secrets = [SECRET, old, expired]
    await sender.send(spec, "t1", webhookpayload.firing_payload(firing(), None))

    [got] = receiver.requests
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verified_by == (SECRET, old)  # a receiver on either secret verifies; the expired one no longer
    assert got.json()["message"] is None


async def test_a_test_delivery_is_a_channel_test(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    request = ChannelTestRequest(
        request_id="r1", channel_id="c1", user_id="u1", email="ada@example.com", requested_at=datetime.now(UTC)
    )
    spec = channel(receiver.url(), ChannelSecret(secret=SECRET))
    await sender.send(spec, webhookpayload.test_message_id(request), webhookpayload.test_payload(request))

    [got] = receiver.requests
    assert got.verified and got.headers["webhook-id"] == "test_r1"
    assert got.json()["type"] == "channel.test" and got.json()["channel_id"] == "c1"


async def failure(sender: WebhookSender, receiver: WebhookReceiver, path: str = "/hook") -> SendFailed:
    with pytest.raises(SendFailed) as caught:
        await sender.send(
            channel(receiver.url(path), ChannelSecret(secret=SECRET)),
            "t1",
            webhookpayload.firing_payload(firing(), None),
        )
    return caught.value


async def test_410_fails_for_good_and_disables_the_channel(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    receiver.cue = Cue(status=410, body=b"gone")
    exc = await failure(sender, receiver)
    assert (exc.permanent, exc.disable, exc.http_status, exc.reply) == (True, True, 410, "HTTP 410 gone")


async def test_500_is_retried_with_the_answer_in_the_reply(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    receiver.cue = Cue(status=500, body=b"database\n  down " + b"x" * 500)
    exc = await failure(sender, receiver)
    assert (exc.permanent, exc.disable, exc.http_status) == (False, False, 500)
    assert exc.reply == "HTTP 500 " + ("database down " + "x" * 500)[:200]


async def test_a_redirect_is_not_followed(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    receiver.cue = Cue(status=302, location=receiver.url("/elsewhere"))
    exc = await failure(sender, receiver)
    assert (exc.permanent, exc.http_status) == (False, 302)
    assert "redirect" in exc.reason
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_no_answer_in_time_is_a_timeout(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    receiver.cue = Cue(delay_s=6.0)
    started = time.monotonic()
    exc = await failure(sender, receiver)
    assert not exc.permanent and "timed out" in exc.reason
    assert time.monotonic() - started < 3.5  # the 1 s timeout, not the 6 s delay


async def test_a_slow_body_after_a_2xx_does_not_hold_the_delivery(
    receiver: WebhookReceiver, sender: WebhookSender
) -> None:
    receiver.cue = Cue(status=200, body=b"ok" * 50, trickle_s=0.2)
    started = time.monotonic()
    delivered = await sender.send(
        channel(receiver.url(), ChannelSecret(secret=SECRET)), "t1", webhookpayload.firing_payload(firing(), None)
    )
    assert delivered.http_status == 200  # the status was in: the receiver took it
    assert time.monotonic() - started < 3.5  # the 1 s deadline, not the body's 20 s


async def test_the_answer_is_read_up_to_the_cap_only(receiver: WebhookReceiver) -> None:
    # The cap's worth comes at once, the rest a byte a second: reading past the cap would wait for the deadline.
    receiver.cue = Cue(status=503, body=b"a" * BODY_CAP + b"b" * 100, trickle_s=1.0, trickle_from=BODY_CAP)
    sender = WebhookSender(settings(webhook_timeout_s=8.0))
    started = time.monotonic()
    exc = await failure(sender, receiver)
    await sender.close()
    assert time.monotonic() - started < 4.0
    assert exc.reply == "HTTP 503 " + "a" * 200


async def test_a_connection_closed_without_answer_is_retried(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    receiver.cue = Cue(close=True)
    exc = await failure(sender, receiver)
    assert not exc.permanent and exc.http_status is None


async def test_a_receiver_down_then_up(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    await receiver.down()
    exc = await failure(sender, receiver)
    assert not exc.permanent and "ConnectError" in exc.reason
    await receiver.up()
    delivered = await sender.send(
        channel(receiver.url(), ChannelSecret(secret=SECRET)), "t1", webhookpayload.firing_payload(firing(), None)
    )
    assert delivered.http_status == 200 and len(receiver.requests) == 1


async def test_a_channel_without_a_usable_secret_fails_for_good(
    receiver: WebhookReceiver, sender: WebhookSender
) -> None:
    payload = webhookpayload.firing_payload(firing(), None)
    for spec in (channel(receiver.url()), channel(receiver.url(), ChannelSecret(secret="whsec_"))):
        with pytest.raises(SendFailed) as caught:
            await sender.send(spec, "t1", payload)
        assert caught.value.permanent
    assert receiver.requests == []
