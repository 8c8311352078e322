"""Helpers shared by the auth tests (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from pricealert.auth.app import create_app
from pricealert.auth.repository import UserRepository
from pricealert.auth.schemas import UserPublic
from pricealert.auth.settings import AuthSettings
from pricealert.auth.state import AuthState
from pricealert.common import names
from pricealert.common.events import AccountEvent
from pricealert.common.redisconn import RedisClient

PASSWORD = "correct horse battery"
AppFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]


def make_settings(database_url: str, redis_url: str, tmp_path: Path, **overrides: Any) -> AuthSettings:
    """AuthSettings that ignore the process environment and .env files."""
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "redis_url": redis_url,
        "key_dir": tmp_path / "keys",
        "bcrypt_rounds": 4,
        "admin_email": None,
        "admin_password": None,
        "key_publish_interval_s": 0.2,
    }
    values.update(overrides)
    return AuthSettings(_env_file=None, **values)


@asynccontextmanager
async def running_app(settings: AuthSettings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan entered and start-up (migrations, key publishing) finished."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state: AuthState = app.state.auth
        await asyncio.wait_for(state.database_ready.wait(), 30)
        await asyncio.wait_for(state.keys_published.wait(), 30)
        yield app


class AppClient(httpx.AsyncClient):
    """An HTTP client of one in-process app, which it keeps (tests look into its database)."""

    def __init__(self, app: FastAPI, address: str) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app, client=(address, 50000)), base_url="http://testserver")
        self.app = app


def client_for(app: FastAPI, address: str = "127.0.0.1") -> AppClient:
    """An HTTP client calling `app` in-process as if from `address`."""
    return AppClient(app, address)


async def stored_user(client: httpx.AsyncClient, email: str) -> dict[str, Any] | None:
    """The user with `email` as the API would show it, read from the app's database; None if there is none."""
    assert isinstance(client, AppClient)
    state: AuthState = client.app.state.auth
    async with state.sessions() as session:
        user = await UserRepository(session).get_by_email(email.strip().lower())
        return UserPublic.model_validate(user).model_dump(mode="json") if user is not None else None


async def register(client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    """Register a user (202, the answer that reveals nothing) and return the user as the API shows it."""
    response = await client.post("/auth/register", json={"email": email, "password": password, **extra})
    assert response.status_code == 202, response.text
    assert set(response.json()) == {"status", "message"}
    user = await stored_user(client, email)
    assert user is not None, f"{email} was not created"
    return user


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Log in with JSON and return the token pair."""
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def register_and_login(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    """A new user's token pair."""
    await register(client, email)
    return await login(client, email)


async def account_events(redis: RedisClient) -> list[AccountEvent]:
    """Every account event appended so far."""
    return [AccountEvent.from_fields(fields) for _, fields in await redis.xrange(names.ACCOUNT_EVENTS)]


def bearer(token: str) -> dict[str, str]:
    """An Authorization header carrying `token`."""
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Check the stable error shape and return the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code, error
    return error
