"""Failed logins are limited per account and per client address, with 429 and Retry-After."""

from __future__ import annotations

import httpx
from auth_testkit import PASSWORD, AppFactory, assert_error, client_for, login, register
from redis.asyncio import Redis

from pricealert.common import names


async def _fail(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": "definitely wrong"})


async def test_sixth_failure_for_an_account_is_429_even_with_the_right_password(
    client: httpx.AsyncClient,
    redis: Redis,
) -> None:
    await register(client, "locked@example.com")
    for _ in range(5):
        assert_error(await _fail(client, "locked@example.com"), 401, "invalid_credentials")
    response = await client.post("/auth/login", json={"email": "locked@example.com", "password": PASSWORD})
    error = assert_error(response, 429, "too_many_login_attempts")
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= 900
    assert error["details"]["retry_after_s"] == retry_after
    ttl = await redis.ttl(names.login_failures_key("account", "locked@example.com"))
    assert 0 < ttl <= 900


async def test_unknown_accounts_are_limited_the_same_way(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert_error(await _fail(client, "ghost@example.com"), 401, "invalid_credentials")
    assert_error(await _fail(client, "ghost@example.com"), 429, "too_many_login_attempts")


async def test_account_limit_counts_any_spelling_of_the_email(client: httpx.AsyncClient) -> None:
    for spelling in ["Case@Example.com", "CASE@example.com", "case@example.com ", "case@EXAMPLE.com", "cAse@x.y"]:
        await _fail(client, spelling)
    assert_error(await _fail(client, "case@example.com"), 401)  # "cAse@x.y" is another account
    assert_error(await _fail(client, "case@example.com"), 429)


async def test_success_resets_the_account_counter(client: httpx.AsyncClient) -> None:
    await register(client, "forgetful@example.com")
    for _ in range(4):
        await _fail(client, "forgetful@example.com")
    await login(client, "forgetful@example.com")
    for _ in range(4):
        assert_error(await _fail(client, "forgetful@example.com"), 401)


async def test_the_account_limit_does_not_lock_other_accounts(client: httpx.AsyncClient) -> None:
    await register(client, "bystander@example.com")
    for _ in range(6):
        await _fail(client, "target@example.com")
    await login(client, "bystander@example.com")


async def test_address_limit_spans_accounts_and_spares_other_addresses(app_factory: AppFactory) -> None:
    async with (
        app_factory(login_max_failures_address=3) as app,
        client_for(app, "10.0.0.1") as attacker,
        client_for(app, "10.0.0.2") as other,
    ):
        await register(other, "someone@example.com")
        for index in range(3):
            assert_error(await _fail(attacker, f"victim{index}@example.com"), 401)
        response = await attacker.post("/auth/login", json={"email": "someone@example.com", "password": PASSWORD})
        assert_error(response, 429, "too_many_login_attempts")
        assert int(response.headers["retry-after"]) > 0
        await login(other, "someone@example.com")


async def test_counters_live_in_redis_with_an_expiry(client: httpx.AsyncClient, redis: Redis) -> None:
    await _fail(client, "counted@example.com")
    account = names.login_failures_key("account", "counted@example.com")
    address = names.login_failures_key("address", "127.0.0.1")
    assert await redis.get(account) == b"1"
    assert await redis.get(address) == b"1"
    assert 0 < await redis.ttl(address) <= 900
