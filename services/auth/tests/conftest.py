"""Fixtures of the auth tests: settings on real databases and Redis, a running app, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_testkit import AppFactory, client_for, make_settings, running_app
from fastapi import FastAPI

from pricealert.auth.settings import AuthSettings


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> AuthSettings:
    """Test settings: a fresh database, the flushed Redis, a private key dir, cheap bcrypt."""
    return make_settings(database_url, redis_url, tmp_path)


@pytest.fixture
def app_factory(settings: AuthSettings) -> AppFactory:
    """Start an app with the test settings, optionally overridden."""

    def factory(**overrides: Any) -> AbstractAsyncContextManager[FastAPI]:
        return running_app(AuthSettings(_env_file=None, **{**settings.model_dump(), **overrides}))

    return factory


@pytest.fixture
async def app(settings: AuthSettings) -> AsyncIterator[FastAPI]:
    """A running app on the test settings."""
    async with running_app(settings) as running:
        yield running


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running app."""
    async with client_for(app) as http:
        yield http
