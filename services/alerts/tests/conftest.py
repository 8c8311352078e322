"""Fixtures of the alerts tests: tokens signed by a test key the test root vouches for, a catalog, the app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from alerts_testkit import (
    CATALOG,
    TokenRoot,
    Tokens,
    client_of,
    public_pem,
    publish_catalog,
    running,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from redis.asyncio import Redis

from pricealert.alerts.settings import AlertsSettings
from pricealert.common.events import CatalogSymbol


@pytest.fixture
def token_root(tmp_path: Path) -> TokenRoot:
    """A fresh root key whose public half is in a file (TOKEN_ROOT_PUBLIC_KEY_FILE)."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "token-root.pem"
    path.write_text(public_pem(key))
    return TokenRoot(key, path)


@pytest.fixture
async def tokens(redis: Redis, token_root: TokenRoot) -> Tokens:
    """A fresh Ed25519 key, vouched for by the test root on the signing-keys stream."""
    key = Ed25519PrivateKey.generate()
    kid = uuid.uuid4().hex[:16]
    await token_root.vouch(redis, kid, public_pem(key))
    return Tokens(key, kid)


@pytest.fixture
async def catalog(redis: Redis) -> list[CatalogSymbol]:
    """The test catalog, published."""
    await publish_catalog(redis)
    return CATALOG


@pytest.fixture
def settings(database_url: str, redis_url: str, token_root: TokenRoot) -> AlertsSettings:
    """Settings pointing at the test servers and the test root key, with fast timers."""
    return AlertsSettings(
        database_url=database_url,
        redis_url=redis_url,
        consumer_name="alerts-test",
        token_root_public_key_file=token_root.public_key_file,
        relay_poll_s=0.1,
        expiry_sweep_s=0.2,
        catalog_min_refresh_s=0,
        consumer_reclaim_idle_ms=1000,
        consumer_block_ms=100,
    )


@pytest.fixture
async def app(settings: AlertsSettings) -> AsyncIterator[FastAPI]:
    """The alerts app with its lifespan running."""
    async with running(settings) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    async with client_of(app) as c:
        yield c


@pytest.fixture
def pg_app_database_url(postgres_url: str) -> str:
    """The URL pg_app reaches the test's Postgres database by: directly (a module may override it)."""
    return postgres_url


@pytest.fixture
async def pg_app(
    pg_app_database_url: str, redis_url: str, token_root: TokenRoot, request: pytest.FixtureRequest
) -> AsyncIterator[FastAPI]:
    """The app on a fresh Postgres database, its consumers and expiry off, at most 3 active alerts per user.

    Parametrize it indirectly with a dict to change other settings.
    """
    settings = AlertsSettings(
        database_url=pg_app_database_url,
        redis_url=redis_url,
        consumer_name="alerts-test",
        token_root_public_key_file=token_root.public_key_file,
        relay_poll_s=0.1,
        catalog_min_refresh_s=0,
        consumers_enabled=False,
        expiry_enabled=False,
        max_active_per_user=3,
        **getattr(request, "param", {}),
    )
    async with running(settings) as application:
        yield application


@pytest.fixture
async def pg_client(pg_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on a fresh Postgres database."""
    async with client_of(pg_app) as c:
        yield c
