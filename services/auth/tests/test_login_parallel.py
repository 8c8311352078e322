"""Parallel guesses are counted before the password check: no more than a limit's worth reach bcrypt."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from auth_testkit import AppFactory, assert_error, client_for
from fastapi import FastAPI

from pricealert.auth.security import PasswordHasher
from pricealert.auth.state import AuthState

GUESSES = 50


class CountingHasher(PasswordHasher):
    """Counts password checks and holds each as long as real bcrypt (cost 12) takes."""

    def __init__(self, rounds: int) -> None:
        super().__init__(rounds)
        self.checks = 0

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Count, wait like bcrypt would, then check."""
        self.checks += 1
        await asyncio.sleep(0.25)
        return await super().verify(password, password_hash)


def _counting(app: FastAPI) -> CountingHasher:
    state: AuthState = app.state.auth
    state.hasher = CountingHasher(state.settings.bcrypt_rounds)
    return state.hasher


async def _guess(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": "a wrong guess"})


def _check_answers(responses: list[httpx.Response], checks: int, limit: int) -> None:
    statuses = Counter(response.status_code for response in responses)
    assert 0 < checks <= limit, checks
    assert statuses == {401: checks, 429: GUESSES - checks}, statuses
    for response in responses:
        if response.status_code == 429:
            assert_error(response, 429, "too_many_login_attempts")
            assert int(response.headers["retry-after"]) > 0


async def test_parallel_guesses_at_one_account_from_one_address(app_factory: AppFactory) -> None:
    async with app_factory() as app, client_for(app, "10.1.0.1") as client:
        hasher = _counting(app)
        responses = await asyncio.gather(*(_guess(client, "target@example.com") for _ in range(GUESSES)))
        _check_answers(list(responses), hasher.checks, 5)


async def test_parallel_guesses_at_one_account_from_many_addresses(app_factory: AppFactory) -> None:
    async with app_factory(login_max_failures_account=8) as app:
        hasher = _counting(app)
        clients = [client_for(app, f"10.2.0.{index}") for index in range(GUESSES)]
        try:
            responses = await asyncio.gather(*(_guess(client, "target@example.com") for client in clients))
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))
        _check_answers(list(responses), hasher.checks, 8)


async def test_parallel_guesses_from_one_address_at_many_accounts(app_factory: AppFactory) -> None:
    async with app_factory(login_max_failures_address=7) as app, client_for(app, "10.3.0.1") as client:
        hasher = _counting(app)
        responses = await asyncio.gather(*(_guess(client, f"user{index}@example.com") for index in range(GUESSES)))
        _check_answers(list(responses), hasher.checks, 7)
