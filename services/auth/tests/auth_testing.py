"""Helpers shared by the auth tests (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from pricealert.auth.main import create_app
from pricealert.auth.settings import AuthSettings
from pricealert.auth.state import AuthState

PASSWORD = "correct horse battery"
AppFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]


def make_settings(database_url: str, redis_url: str, tmp_path: Path, **overrides: Any) -> AuthSettings:
    """AuthSettings that ignore the process environment and .env files."""
    values: dict[str, Any] = {
        "env": "test", "database_url": database_url, "redis_url": redis_url, "key_dir": tmp_path / "keys",
        "bcrypt_rounds": 4, "admin_email": None, "admin_password": None, "key_publish_interval_s": 0.2,
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


def client_for(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client calling `app` in-process as if from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def register(client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    """Register a user and return the created user body."""
    response = await client.post("/auth/register", json={"email": email, "password": password, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


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
