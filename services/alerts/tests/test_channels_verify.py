"""Email channels (verified by a mailed link through the outbox) and test sends answered by a stand-in notifier."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from alerts_testkit import Tokens
from channels_testkit import add_channel, channels_of, registry, use_resolver, verification_mail, webhook
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select, update

from pricealert.alerts.channelrules import token_hash
from pricealert.alerts.channelstore import MAILS_PER_WINDOW
from pricealert.alerts.models import Channel, OutboxEntry
from pricealert.common import names
from pricealert.common.channels import ChannelStatus, ChannelTestOutcome, ChannelTestRequest
from pricealert.common.events import AccountEventType, utc_now
from pricealert.common.tasks import cancel_and_wait

pytestmark = pytest.mark.usefixtures("catalog")


async def test_another_address_is_verified_by_the_mailed_link(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    created = await add_channel(client, tokens, kind="email", address="Desk@Example.ORG", name="desk")
    assert created["status"] == "unverified" and created["target"] == "Desk@example.org"
    spec = await registry(redis, created["id"])
    assert spec is not None and spec.status is ChannelStatus.UNVERIFIED
    mail = await verification_mail(redis, "Desk@example.org")
    assert mail.type is AccountEventType.CHANNEL_VERIFICATION and mail.user_id == "u1" and mail.token
    assert mail.expires_at is not None
    assert timedelta(hours=23) < mail.expires_at - utc_now() <= timedelta(hours=24)
    async with channels_of(app).store.sessions() as session:
        row = (await session.execute(select(Channel).where(Channel.id == created["id"]))).scalar_one()
    assert row.verify_token_hash == token_hash(mail.token) != mail.token  # only its hash is kept
    headers = tokens.headers("u1")
    refused = await client.patch(f"/channels/{created['id']}", json={"status": "active"}, headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "channel_unverified"
    verified = await client.get("/channels/verify", params={"token": mail.token})  # no bearer: the mail's link
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "verified" and verified.json()["channel_id"] == created["id"]
    shown = (await client.get(f"/channels/{created['id']}", headers=headers)).json()
    assert shown["status"] == "active" and shown["version"] == 2
    spec = await registry(redis, created["id"])
    assert spec is not None and spec.status is ChannelStatus.ACTIVE and spec.version == 2
    again = await client.get("/channels/verify", params={"token": mail.token})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_verification_token"
    assert (await client.get("/channels/verify")).status_code == 422


async def test_the_page_posts_the_token(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    """The mail's link opens the page at /#/channels/verify?token=…; it posts the token, no login needed."""
    created = await add_channel(client, tokens, kind="email", address="page@example.org")
    mail = await verification_mail(redis, "page@example.org")
    verified = await client.post("/channels/verify", json={"token": mail.token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "verified" and verified.json()["channel_id"] == created["id"]
    again = await client.post("/channels/verify", json={"token": mail.token})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_verification_token"
    for bad in ({}, {"token": ""}, {"token": "x" * 201}, {"token": mail.token, "extra": 1}):
        assert (await client.post("/channels/verify", json=bad)).status_code == 422


async def test_an_expired_link_is_gone(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    created = await add_channel(client, tokens, kind="email", address="late@example.org")
    mail = await verification_mail(redis, "late@example.org")
    async with channels_of(app).store.sessions() as session, session.begin():
        past = utc_now() - timedelta(seconds=1)
        await session.execute(update(Channel).where(Channel.id == created["id"]).values(verify_expires_at=past))
    expired = await client.get("/channels/verify", params={"token": mail.token})
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "verification_token_expired"
    shown = (await client.get(f"/channels/{created['id']}", headers=tokens.headers("u1"))).json()
    assert shown["status"] == "unverified"


async def test_the_account_address_is_active_at_once_unless_the_account_is_unverified(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    own = await add_channel(client, tokens, kind="email", address="u1@example.com")
    assert own["status"] == "active"
    await redis.sadd(names.ACCOUNTS_UNVERIFIED, "u2")
    unverified = await add_channel(client, tokens, "u2", kind="email", address="u2@example.com")
    assert unverified["status"] == "unverified"
    await verification_mail(redis, "u2@example.com")
    async with channels_of(app).store.sessions() as session:
        staged = (await session.execute(select(OutboxEntry.stream))).scalars().all()
    assert names.ACCOUNT_EVENTS not in staged  # relayed, and only for the addresses that need a link
    mails = [f for _, f in await redis.xrange(names.ACCOUNT_EVENTS)]
    assert len(mails) == 1


@contextlib.asynccontextmanager
async def stand_in_notifier(redis: Redis, *, delivered: bool = True) -> AsyncIterator[list[ChannelTestRequest]]:
    """Answers each test request on its reply list, as the notifier does."""
    seen: list[ChannelTestRequest] = []

    async def answer() -> None:
        last = "0"
        while True:
            for _, entries in await redis.xread({names.CHANNEL_TESTS: last}, block=100) or []:
                for entry_id, fields in entries:
                    last = entry_id
                    request = ChannelTestRequest.from_fields(fields)
                    seen.append(request)
                    outcome = ChannelTestOutcome(
                        request_id=request.request_id,
                        channel_id=request.channel_id,
                        delivered=delivered,
                        detail="HTTP 204" if delivered else "HTTP 500",
                        http_status=204 if delivered else 500,
                        duration_ms=12,
                    )
                    key = names.channel_test_reply_key(request.request_id)
                    await redis.lpush(key, outcome.to_json())
                    await redis.expire(key, 60)

    task = asyncio.create_task(answer())
    try:
        yield seen
    finally:
        await cancel_and_wait(task)


async def test_a_test_send_answers_with_the_notifiers_outcome(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    use_resolver(app)
    channel = await webhook(client, tokens)
    headers = tokens.headers("u1")
    async with stand_in_notifier(redis) as seen:
        response = await client.post(f"/channels/{channel['id']}/test", headers=headers)
        assert response.status_code == 200, response.text
        outcome = response.json()
        assert outcome["delivered"] is True and outcome["http_status"] == 204 and outcome["duration_ms"] == 12
        assert outcome["channel_id"] == channel["id"] and outcome["request_id"] == seen[0].request_id
        assert seen[0].user_id == "u1" and seen[0].email == "u1@example.com"
        account = await client.post("/channels/email/test", headers=headers)
        assert account.status_code == 200 and account.json()["channel_id"] == "email"
        other = await client.post(f"/channels/{channel['id']}/test", headers=tokens.headers("u2"))
        assert other.status_code == 404
        nonsense = await client.post("/channels/not-an-id/test", headers=headers)
        assert nonsense.status_code == 404 and len(seen) == 2


async def test_a_test_send_without_an_answer_times_out(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    channels_of(app).test_timeout_s = 0.5
    response = await client.post("/channels/email/test", headers=tokens.headers("u1"))
    assert response.status_code == 504 and response.json()["error"]["code"] == "channel_test_timeout"
    assert await redis.xlen(names.CHANNEL_TESTS) == 1


async def test_verification_mails_are_limited_per_hour(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("u1")
    first = await add_channel(client, tokens, kind="email", address="a0@example.org")
    assert (await client.delete(f"/channels/{first['id']}", headers=headers)).status_code == 204
    for n in range(1, MAILS_PER_WINDOW):
        await add_channel(client, tokens, kind="email", address=f"a{n}@example.org")
    refused = await client.post("/channels", json={"kind": "email", "address": "a9@example.org"}, headers=headers)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_verification_mails"
    assert refused.headers["retry-after"] == "3600"
    use_resolver(app)
    await webhook(client, tokens)  # other kinds mail nothing
    await add_channel(client, tokens, "u2", kind="email", address="a9@example.org")  # per user
