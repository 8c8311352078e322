"""Email verification: the link's token works once and expires; new links are limited; the notifier's gate is kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from auth_testkit import AppFactory, account_events, assert_error, bearer, client_for, login, register, stored_user
from redis.asyncio import Redis
from sqlalchemy import update

from pricealert.auth.models import EmailVerificationToken
from pricealert.auth.registration import token_hash
from pricealert.auth.state import AuthState
from pricealert.common import names
from pricealert.common.events import AccountEventType, utc_now


async def link_token(redis: Redis, email: str) -> str:
    """The token of the newest verification mail to `email`."""
    links = [e for e in await account_events(redis) if e.email == email and e.token]
    assert links, f"no verification link for {email}"
    assert links[-1].token is not None
    return links[-1].token


async def test_registration_publishes_the_link_and_marks_the_account_unverified(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    user = await register(client, "new@example.com")
    [event] = await account_events(redis)
    assert event.type is AccountEventType.REGISTERED and event.user_id == user["id"]
    assert event.email == "new@example.com" and event.token and event.expires_at is not None
    assert timedelta(hours=23) < event.expires_at - utc_now() <= timedelta(hours=24)
    assert await redis.sismember(names.ACCOUNTS_UNVERIFIED, user["id"])

    state: AuthState = client.app.state.auth  # type: ignore[attr-defined]
    async with state.sessions() as session:  # only the hash of the token is stored
        assert await session.get(EmailVerificationToken, event.token) is None
        assert await session.get(EmailVerificationToken, token_hash(event.token)) is not None


async def test_the_link_verifies_once_and_the_token_is_single_use(client: httpx.AsyncClient, redis: Redis) -> None:
    user = await register(client, "once@example.com")
    token = await link_token(redis, "once@example.com")

    verified = await client.get("/auth/verify", params={"token": token})  # the link in the mail
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "verified"
    assert not await redis.sismember(names.ACCOUNTS_UNVERIFIED, user["id"])
    assert [e.type for e in await account_events(redis)][-1] is AccountEventType.VERIFIED
    tokens = await login(client, "once@example.com")
    me = await client.get("/auth/me", headers=bearer(tokens["access_token"]))
    assert me.json()["email_verified"] is True

    again = await client.post("/auth/verify", json={"token": token})
    assert again.status_code == 200 and again.json()["status"] == "already_verified"
    assert [e.type for e in await account_events(redis)].count(AccountEventType.VERIFIED) == 1


async def test_a_token_is_used_up_even_while_its_account_stays_unverified(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    user = await register(client, "reuse@example.com")
    token = await link_token(redis, "reuse@example.com")
    state: AuthState = client.app.state.auth  # type: ignore[attr-defined]
    async with state.sessions() as session:  # used, but the account not (yet) verified: e.g. a rolled-back race
        await session.execute(update(EmailVerificationToken).values(used_at=utc_now()))
        await session.commit()
    assert_error(await client.post("/auth/verify", json={"token": token}), 400, "invalid_verification_token")
    assert await redis.sismember(names.ACCOUNTS_UNVERIFIED, user["id"])


async def test_an_expired_token_is_refused_and_a_new_link_works(client: httpx.AsyncClient, redis: Redis) -> None:
    user = await register(client, "late@example.com")
    old = await link_token(redis, "late@example.com")
    state: AuthState = client.app.state.auth  # type: ignore[attr-defined]
    async with state.sessions() as session:
        await session.execute(update(EmailVerificationToken).values(expires_at=utc_now() - timedelta(seconds=1)))
        await session.commit()

    assert_error(await client.post("/auth/verify", json={"token": old}), 400, "verification_token_expired")
    assert (await stored_user(client, "late@example.com") or {})["email_verified"] is False

    resent = await client.post("/auth/verify/resend", json={"email": "late@example.com"})
    assert resent.status_code == 202, resent.text
    event = (await account_events(redis))[-1]
    assert event.type is AccountEventType.VERIFICATION_RESENT and event.user_id == user["id"]
    assert (await client.post("/auth/verify", json={"token": event.token})).json()["status"] == "verified"


@pytest.mark.parametrize("token", ["nonsense", "x" * 256], ids=["unknown", "long"])
async def test_an_unknown_token_is_400(client: httpx.AsyncClient, token: str) -> None:
    assert_error(await client.post("/auth/verify", json={"token": token}), 400, "invalid_verification_token")
    assert_error(await client.get("/auth/verify", params={"token": token}), 400, "invalid_verification_token")


async def test_resend_answers_alike_for_any_address_and_is_limited_per_account(
    app_factory: AppFactory, redis: Redis
) -> None:
    async with app_factory(verify_resend_max_per_account=3) as app, client_for(app) as client:
        await register(client, "waiting@example.com")
        answers = {}
        for email in ("waiting@example.com", "nobody@example.com"):
            replies = [await client.post("/auth/verify/resend", json={"email": email}) for _ in range(4)]
            assert [r.status_code for r in replies] == [202, 202, 202, 429]
            error = assert_error(replies[-1], 429, "too_many_verification_requests")
            assert int(replies[-1].headers["Retry-After"]) >= 1 and error["details"]["retry_after_s"] >= 1
            answers[email] = replies[0].json()
        assert answers["waiting@example.com"] == answers["nobody@example.com"]
        links = [e for e in await account_events(redis) if e.type is AccountEventType.VERIFICATION_RESENT]
        assert len(links) == 3 and {e.email for e in links} == {"waiting@example.com"}


async def test_without_required_verification_accounts_are_verified_at_creation(
    app_factory: AppFactory, redis: Redis
) -> None:
    async with app_factory(require_verified_email=False) as app, client_for(app) as client:
        reply = await client.post("/auth/register", json={"email": "closed@example.com", "password": "a fine pass"})
        assert reply.status_code == 202 and reply.json()["status"] == "registered"
        user: dict[str, Any] | None = await stored_user(client, "closed@example.com")
        assert user is not None and user["email_verified"] is True
        assert await account_events(redis) == []
        assert not await redis.exists(names.ACCOUNTS_UNVERIFIED)


async def test_accounts_made_by_an_admin_are_verified(app_factory: AppFactory, redis: Redis) -> None:
    async with (
        app_factory(admin_email="root@example.com", admin_password="root password 1") as app,
        client_for(app) as client,
    ):
        tokens = await login(client, "root@example.com", "root password 1")
        made = await client.post(
            "/auth/users",
            headers=bearer(tokens["access_token"]),
            json={"email": "made@example.com", "password": "a fine pass"},
        )
        assert made.status_code == 201 and made.json()["email_verified"] is True
        me = await client.get("/auth/me", headers=bearer(tokens["access_token"]))
        assert me.json()["email_verified"] is True
        assert await account_events(redis) == []
