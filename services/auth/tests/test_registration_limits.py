"""Registration: limited per client address before any costly work; a taken address or username answers as new."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from auth_testkit import AppFactory, account_events, assert_error, client_for, login, register, stored_user
from redis.asyncio import Redis

from pricealert.auth.state import AuthState
from pricealert.common.events import AccountEventType
from pricealert.devstack.servers import RedisServer


async def test_registrations_are_limited_per_address_before_the_hash(app_factory: AppFactory, redis: Redis) -> None:
    async with (
        app_factory(register_max_per_address=3) as app,
        client_for(app) as client,
        client_for(app, address="10.0.0.9") as other,
    ):
        for n in range(3):
            await register(client, f"r{n}@example.com")
        refused = await client.post("/auth/register", json={"email": "r3@example.com", "password": "a fine pass"})
        error = assert_error(refused, 429, "too_many_registrations")
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600 and error["details"]["retry_after_s"] >= 1
        assert await stored_user(client, "r3@example.com") is None
        await register(other, "r3@example.com")  # another address has its own budget


async def test_parallel_registrations_from_one_address_cannot_pass_the_limit(
    app_factory: AppFactory, redis: Redis
) -> None:
    async with app_factory(register_max_per_address=5) as app, client_for(app) as client:
        replies = await asyncio.gather(
            *(
                client.post("/auth/register", json={"email": f"p{n}@example.com", "password": "a fine pass"})
                for n in range(20)
            )
        )
        assert sorted(r.status_code for r in replies) == [202] * 5 + [429] * 15


async def test_a_taken_address_gets_the_same_answer_and_its_owner_one_notice(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    first = await client.post("/auth/register", json={"email": "owner@example.com", "password": "owner pass 1"})
    user = await stored_user(client, "owner@example.com")
    assert user is not None
    replies = [
        await client.post("/auth/register", json={"email": "Owner@Example.com", "password": "intruder 1"})
        for _ in range(3)
    ]
    new = await client.post("/auth/register", json={"email": "fresh@example.com", "password": "owner pass 1"})
    for reply in [*replies, new]:
        assert (reply.status_code, reply.json()) == (first.status_code, first.json())
        assert set(reply.headers) - {"x-request-id", "content-length", "date"} == (
            set(first.headers) - {"x-request-id", "content-length", "date"}
        )

    notices = [e for e in await account_events(redis) if e.type is AccountEventType.REGISTRATION_REPEATED]
    assert [(e.user_id, e.email, e.token) for e in notices] == [(user["id"], "owner@example.com", None)]
    assert (await stored_user(client, "owner@example.com")) == user
    await login(client, "owner@example.com", "owner pass 1")  # the owner's password is untouched


async def test_a_taken_address_costs_the_same_password_hash_as_a_new_one(client: httpx.AsyncClient) -> None:
    state: AuthState = client.app.state.auth  # type: ignore[attr-defined]
    hashed: list[str] = []
    original = state.hasher.hash

    async def counting(password: str) -> str:
        hashed.append(password)
        return await original(password)

    state.hasher.hash = counting  # type: ignore[method-assign]
    for email, password in [
        ("cost@example.com", "first pass 1"),
        ("cost@example.com", "second pass 2"),
        ("cost2@example.com", "third pass 3"),
    ]:
        assert (await client.post("/auth/register", json={"email": email, "password": password})).status_code == 202
    assert hashed == ["first pass 1", "second pass 2", "third pass 3"]


async def test_a_taken_username_gets_the_same_answer_and_the_new_address_a_notice(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    first = await client.post(
        "/auth/register", json={"email": "holder@example.com", "password": "a fine pass", "username": "neo"}
    )
    again = await client.post(
        "/auth/register", json={"email": "asker@example.com", "password": "a fine pass", "username": "NEO"}
    )
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert await stored_user(client, "asker@example.com") is None
    [notice] = [e for e in await account_events(redis) if e.type is AccountEventType.REGISTRATION_REFUSED]
    assert (notice.email, notice.username, notice.user_id, notice.token) == ("asker@example.com", "NEO", None, None)


async def test_registration_while_redis_is_away_is_503_and_creates_nothing(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    own = RedisServer(tmp_path / "redis").start()  # a Redis of this test's own, to stop
    try:
        async with app_factory(redis_url=own.url) as app, client_for(app) as client:
            await register(client, "before@example.com")
            own.stop()
            refused = await client.post("/auth/register", json={"email": "away@example.com", "password": "a fine pass"})
            assert_error(refused, 503)
            assert await stored_user(client, "away@example.com") is None
    finally:
        own.stop()
