"""The local webhook receiver: cues in order, signatures checked, down and back up on the same port, in a thread."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from pricealert.testsupport.webhooks import Cue, WebhookReceiver, receiver_in_thread

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()


def signed(body: bytes, secret: str = SECRET, msg_id: str = "m1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


async def test_cues_answer_in_order_then_the_default() -> None:
    async with WebhookReceiver(cue=Cue(status=204)) as receiver, httpx.AsyncClient() as client:
        receiver.queue(Cue(status=500, body=b"no"), Cue(status=302, location="http://elsewhere.test/"))
        answers = [await client.post(receiver.url(), content=b"{}") for _ in range(3)]
    assert [a.status_code for a in answers] == [500, 302, 204]
    assert answers[0].text == "no" and answers[1].headers["location"] == "http://elsewhere.test/"
    assert len(receiver.requests) == 3


async def test_signatures_are_checked_with_each_secret() -> None:
    other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    async with WebhookReceiver(secrets=[SECRET, other]) as receiver, httpx.AsyncClient() as client:
        await client.post(receiver.url("/a"), content=b'{"x":1}', headers=signed(b'{"x":1}'))
        await client.post(receiver.url("/b"), content=b'{"x":2}', headers=signed(b'{"x":1}'))
        got = await receiver.wait_for(2)
    assert [(r.path, r.verified_by) for r in got] == [("/a", (SECRET,)), ("/b", ())]
    assert got[0].json() == {"x": 1} and got[0].headers["webhook-id"] == "m1"


async def test_down_for_a_while_then_back_on_the_same_port() -> None:
    async with WebhookReceiver() as receiver, httpx.AsyncClient() as client:
        port = receiver.port
        await receiver.down(0.5)
        with pytest.raises(httpx.ConnectError):
            await client.post(receiver.url(), content=b"{}")
        await asyncio.sleep(0.8)
        assert (await client.post(receiver.url(), content=b"{}")).status_code == 200
    assert receiver.port == port and len(receiver.requests) == 1


async def test_a_delay_and_a_closed_connection() -> None:
    async with WebhookReceiver() as receiver, httpx.AsyncClient() as client:
        receiver.queue(Cue(delay_s=0.3), Cue(close=True))
        started = time.monotonic()
        assert (await client.post(receiver.url(), content=b"{}")).status_code == 200
        assert time.monotonic() - started >= 0.3
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(receiver.url(), content=b"{}")


def test_in_a_thread_of_its_own() -> None:
    with receiver_in_thread(cue=Cue(status=202)) as (receiver, _loop):
        assert httpx.post(receiver.url(), content=b"{}").status_code == 202
    assert len(receiver.requests) == 1
