"""A stranger's failures cannot lock the owner out: limits per (account, address), and known addresses."""

from __future__ import annotations

import asyncio

import httpx
from auth_testkit import PASSWORD, AppFactory, assert_error, client_for, login, register
from fastapi import FastAPI
from redis.asyncio import Redis

from pricealert.common import names

OWNER = "owner@example.com"
STRANGER = "203.0.113.66"
HOME = "198.51.100.7"


async def _try(client: httpx.AsyncClient, email: str, password: str = "a stranger's guess") -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": password})


async def _owner_at_home(app: FastAPI) -> None:
    async with client_for(app, HOME) as home:
        await register(home, OWNER)
        await login(home, OWNER)  # makes HOME a known address of the account


async def _distributed_attack(app: FastAPI, email: str, addresses: int, per_address: int = 5) -> None:
    for index in range(addresses):
        async with client_for(app, f"192.0.2.{index + 1}") as client:
            for _ in range(per_address):
                assert_error(await _try(client, email), 401, "invalid_credentials")


async def test_a_stranger_cannot_lock_the_owner_out(app_factory: AppFactory) -> None:
    async with app_factory() as app:
        await _owner_at_home(app)
        async with client_for(app, STRANGER) as stranger:
            answers = [(await _try(stranger, OWNER)).status_code for _ in range(12)]
            assert answers == [401] * 5 + [429] * 7
            async with client_for(app, HOME) as home:
                await login(home, OWNER)
            assert_error(await _try(stranger, OWNER, PASSWORD), 429, "too_many_login_attempts")


async def test_distributed_guessing_stops_new_addresses_but_not_known_ones(app_factory: AppFactory) -> None:
    async with app_factory() as app:
        await _owner_at_home(app)
        await _distributed_attack(app, OWNER, addresses=4)  # 4 x 5 = the account-wide 20
        await _distributed_attack(app, "ghost@example.com", addresses=4)
        async with client_for(app, "192.0.2.200") as newcomer:
            refused = await _try(newcomer, OWNER, PASSWORD)
            error = assert_error(refused, 429, "too_many_login_attempts")
            assert 0 < int(refused.headers["retry-after"]) <= 900
            ghost = await _try(newcomer, "ghost@example.com", PASSWORD)  # an unknown email: the same answer
            assert ghost.status_code == 429 and ghost.json()["error"]["code"] == error["code"]
            assert ghost.json()["error"]["message"] == error["message"]
        async with client_for(app, HOME) as home:
            await login(home, OWNER)
            for _ in range(5):  # a known address still has its own limit against guessing
                assert_error(await _try(home, OWNER), 401, "invalid_credentials")
            assert_error(await _try(home, OWNER, PASSWORD), 429, "too_many_login_attempts")


async def test_success_gives_back_its_attempt_and_forgets_the_pair(app_factory: AppFactory, redis: Redis) -> None:
    async with app_factory() as app:
        await _owner_at_home(app)
        async with client_for(app, HOME) as home:
            for _ in range(3):
                await _try(home, OWNER)
            await login(home, OWNER)
        assert await redis.exists(names.login_pair_failures_key(OWNER, HOME)) == 0
        assert await redis.get(names.login_failures_key("account", OWNER)) == b"3"
        assert await redis.get(names.login_failures_key("address", HOME)) == b"3"
        known = names.login_known_addresses_key(OWNER)
        assert await redis.zrange(known, 0, -1) == [HOME.encode()]
        assert 29 * 24 * 3600 < await redis.ttl(known) <= 30 * 24 * 3600


async def test_limits_end_with_their_window(app_factory: AppFactory, redis: Redis) -> None:
    async with app_factory(login_window_s=1) as app, client_for(app, STRANGER) as stranger:
        await register(stranger, OWNER)
        for _ in range(5):
            await _try(stranger, OWNER)
        assert_error(await _try(stranger, OWNER, PASSWORD), 429)
        assert 0 < await redis.pttl(names.login_pair_failures_key(OWNER, STRANGER)) <= 1000
        await asyncio.sleep(1.2)
        await login(stranger, OWNER)


async def test_known_addresses_are_forgotten_after_their_lifetime(app_factory: AppFactory) -> None:
    async with app_factory(login_known_address_ttl_s=1, login_max_failures_account=2) as app:
        await _owner_at_home(app)
        await asyncio.sleep(1.2)
        await _distributed_attack(app, OWNER, addresses=2, per_address=1)
        async with client_for(app, HOME) as home:
            assert_error(await _try(home, OWNER, PASSWORD), 429, "too_many_login_attempts")
