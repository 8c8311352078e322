"""Helpers of the alerts tests: the catalog, tokens and their root key, the app and worker running in-process."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from pricealert.alerts import worker
from pricealert.alerts.app import create_app
from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.common.events import AlertEvent, CatalogSnapshot, CatalogSymbol, Event
from pricealert.common.keytrust import sign_statement
from pricealert.common.publisher import publish
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.common.tokens import AUDIENCE, ISSUER

CATALOG = [
    CatalogSymbol(symbol="BTCUSDT", min_price=Decimal("0.01"), max_price=Decimal("1000000"), tick_size=Decimal("0.01")),
    CatalogSymbol(symbol="ETHUSDT", min_price=Decimal("0.01"), max_price=Decimal("1000000"), tick_size=Decimal("0.01")),
    CatalogSymbol(
        symbol="ETHBTC", min_price=Decimal("0.00001"), max_price=Decimal("922327"), tick_size=Decimal("0.00001")
    ),
    CatalogSymbol(
        symbol="SHIBUSDT", min_price=Decimal("0.00000001"), max_price=Decimal("1"), tick_size=Decimal("0.00000001")
    ),
]


# The shard count of the tests' settings (SHARDS unset).
SHARDS = DEFAULT_SHARDS


def stream_of(event: type[Event], symbol: str, shards: int = SHARDS) -> str:
    """The stream of `event`'s kind of `symbol`'s shard (a notification result travels on its trigger's shard)."""
    return event.stream_of(shard_of(symbol, shards))


def alert_events_streams(shards: int = SHARDS) -> list[str]:
    """Every shard's alert-events stream."""
    return [AlertEvent.stream_of(shard) for shard in range(shards)]


async def alert_events(redis: RedisClient, shards: int = SHARDS) -> list[AlertEvent]:
    """Every entry of every shard's alert-events stream, parsed, by entry id (each stream's order kept)."""
    found: list[tuple[tuple[int, int], AlertEvent]] = []
    for stream in alert_events_streams(shards):
        entries: Any = await redis.xrange(stream)
        for entry_id, fields in entries:
            ms, _, seq = (entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)).partition("-")
            found.append(((int(ms), int(seq)), AlertEvent.from_fields(fields)))
    return [event for _, event in sorted(found, key=lambda pair: pair[0])]


async def alert_events_count(redis: RedisClient, shards: int = SHARDS) -> int:
    """How many entries the shards' alert-events streams hold together."""
    return sum([int(await redis.xlen(stream)) for stream in alert_events_streams(shards)])


def public_pem(key: Ed25519PrivateKey) -> str:
    """The PEM of `key`'s public half."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class TokenRoot:
    """The test's root key (auth's role): the app trusts its public file, and it vouches for signing keys."""

    key: Ed25519PrivateKey
    public_key_file: Path

    async def vouch(
        self, redis: RedisClient, kid: str, public_key: str, *, algorithm: str = "EdDSA", validity_s: float = 3600
    ) -> None:
        """Publish a statement for `kid` signed by this root, as auth does."""
        now = datetime.now(UTC)
        await publish(
            redis,
            names.SIGNING_KEYS,
            sign_statement(
                self.key,
                kid=kid,
                algorithm=algorithm,
                public_pem=public_key,
                issued_at=now,
                valid_until=now + timedelta(seconds=validity_s),
            ),
        )


@dataclass
class Tokens:
    """Signs access tokens the way the auth service does."""

    key: Ed25519PrivateKey
    kid: str

    def make(
        self,
        user_id: str,
        email: str | None = None,
        *,
        token_type: str = "access",
        ttl_s: int = 900,
        key: Ed25519PrivateKey | None = None,
        **extra: object,
    ) -> str:
        """A signed token for `user_id`."""
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": user_id,
            "email": email or f"{user_id}@example.com",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
            "type": token_type,
            **extra,
        }
        return jwt.encode(claims, key or self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, user_id: str) -> dict[str, str]:
        """Authorization headers for `user_id`."""
        return {"Authorization": f"Bearer {self.make(user_id)}"}


async def publish_catalog(redis: RedisClient, symbols: list[CatalogSymbol] = CATALOG) -> None:
    """Publish a symbol catalog the way ingest does."""
    await publish(redis, names.SYMBOL_CATALOG, CatalogSnapshot.build(symbols, datetime.now(UTC)))


@asynccontextmanager
async def worker_running(settings: AlertsSettings) -> AsyncIterator[None]:
    """The alerts worker (consumers, relay, sweeper) on `settings`, in this event loop."""
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(worker.run(settings, stop, started=started))
    # Connected before the test goes on (a test that stops the database would otherwise meet its start-up).
    await asyncio.wait([task, asyncio.ensure_future(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        await task
    try:
        yield
    finally:
        stop.set()
        await task


@asynccontextmanager
async def running(settings: AlertsSettings) -> AsyncIterator[FastAPI]:
    """The alerts app on `settings` with its lifespan running, and the worker beside it (as in production)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application), worker_running(settings):
        yield application


def client_of(app: FastAPI) -> httpx.AsyncClient:
    """An HTTP client talking to `app` in-process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://alerts")
