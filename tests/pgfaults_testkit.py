"""The alerts and auth APIs, the alerts worker and the evaluator on one real Postgres, a steady load, and the faults."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from alerts_testkit import TokenRoot, Tokens, alert_events, client_of, public_pem, publish_catalog, running
from auth_testkit import PASSWORD, client_for, make_settings, running_app, stored_user
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType, Tick, Trigger, now_ms
from pricealert.common.redisconn import RedisClient, connect
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.devstack.ports import wait_for_port
from pricealert.devstack.servers import PostgresServer
from pricealert.evaluator import handlers as evaluator
from pricealert.evaluator.settings import EvaluatorSettings
from pricealert.testsupport.pgfaults import durable_database, kill_postgres
from pricealert.testsupport.polling import eventually

# No answer may take longer than this, whatever the database does.
BOUND_S = 10.0
SYMBOL = "BTCUSDT"
NEVER = "999999"  # the load's alerts: above a price no tick of these tests reaches


@dataclass
class Answer:
    """One request of the load: what it was, how it was answered, how long it took (status 0: it hung)."""

    what: str
    status: int
    code: str | None
    retry_after: str | None
    elapsed_s: float
    at: float


@dataclass
class Stack:
    """The running services, their clients, and what the load saw."""

    server: PostgresServer
    redis: RedisClient
    alerts: httpx.AsyncClient
    auth: httpx.AsyncClient
    tokens: Tokens
    answers: list[Answer] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # alert ids answered 201
    registered: list[str] = field(default_factory=list)  # emails answered 202

    @property
    def headers(self) -> dict[str, str]:
        """The load's user."""
        return self.tokens.headers("load-user")

    async def call(self, what: str, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, bounded by BOUND_S, recorded in `answers`."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(BOUND_S):
                response = await client.request(method, url, **kwargs)
        except TimeoutError:
            self.answers.append(Answer(what, 0, None, None, time.monotonic() - started, started))
            raise
        code = None
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            code = response.json().get("error", {}).get("code")
        elapsed = time.monotonic() - started
        self.answers.append(
            Answer(what, response.status_code, code, response.headers.get("retry-after"), elapsed, started)
        )
        return response

    async def create(self, target: str = NEVER) -> httpx.Response:
        """POST /alerts of one level alert; its id is kept when acknowledged."""
        body = {"symbol": SYMBOL, "condition": "above", "target_price": target}
        response = await self.call("create", self.alerts, "POST", "/alerts", json=body, headers=self.headers)
        if response.status_code == 201:
            self.created.append(response.json()["id"])
        return response

    async def register(self) -> httpx.Response:
        """POST /auth/register of a new account; its email is kept when acknowledged."""
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        response = await self.call(
            "register", self.auth, "POST", "/auth/register", json={"email": email, "password": PASSWORD}
        )
        if response.status_code == 202:
            self.registered.append(email)
        return response

    async def load(self, stop: asyncio.Event) -> None:
        """Creates, listings and registrations, a few per second, until `stop`."""
        while not stop.is_set():
            for step in (self.create, self.list_page, self.register):
                with suppress(TimeoutError):  # recorded as a hang
                    await step()
            await asyncio.sleep(0.05)

    async def list_page(self) -> httpx.Response:
        """GET /alerts."""
        return await self.call("list", self.alerts, "GET", "/alerts", headers=self.headers)

    def since(self, at: float) -> list[Answer]:
        """The answers to requests sent from `at` on."""
        return [a for a in self.answers if a.at >= at]


async def _wait_closed(port: int, within: float = 10.0) -> None:
    async def closed() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return True
        writer.close()
        return False

    await eventually(closed, within=within, every=0.05, what=f"port {port} closed")


async def crash(server: PostgresServer) -> None:
    """kill -9 Postgres and wait until its port is closed."""
    kill_postgres(server)
    await _wait_closed(server.port)


async def restart(server: PostgresServer) -> None:
    """Start the server again on its port and data (crash recovery first, if it was killed)."""
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(wait_for_port, server.port)


async def tick(redis: RedisClient, price: str, trade_id: int) -> None:
    """A trade of SYMBOL on its shard's ticks stream, as ingest writes it."""
    event = Tick(symbol=SYMBOL, price=Decimal(price), trade_id=trade_id, exchange_time=now_ms(), received_at=now_ms())
    await redis.xadd(Tick.stream_of(shard_of(SYMBOL, DEFAULT_SHARDS)), event.to_fields())  # type: ignore[arg-type]


async def fired(redis: RedisClient) -> set[str]:
    """The alert ids of every trigger the evaluator wrote."""
    entries = await redis.xrange(Trigger.stream_of(shard_of(SYMBOL, DEFAULT_SHARDS)))
    return {fields[b"alert_id"].decode() for _, fields in entries}


async def dead_letters(redis: RedisClient) -> int:
    """How many entries every dead-letter stream holds together."""
    keys = [key async for key in redis.scan_iter(match="*dead*")]
    return sum([int(await redis.xlen(key)) for key in keys])


async def indexed(redis: RedisClient) -> bool:
    """Whether the evaluator has read and acknowledged every alert event of SYMBOL's shard."""
    stream = AlertEvent.stream_of(shard_of(SYMBOL, DEFAULT_SHARDS))
    last = await redis.xrevrange(stream, count=1)
    groups = await redis.xinfo_groups(stream) if last else []
    group = next((g for g in groups if g["name"] in (names.GROUP_EVALUATOR, names.GROUP_EVALUATOR.encode())), None)
    return group is not None and group["pending"] == 0 and group["last-delivered-id"] == last[0][0]


async def relayed_ids(redis: RedisClient) -> set[str]:
    """The ids of the alerts whose alert.created reached the streams."""
    return {e.alert_id for e in await alert_events(redis) if e.type is AlertEventType.CREATED}


async def lost_registrations(stack: Stack) -> list[str]:
    """Acknowledged registrations the auth database does not hold."""
    return [email for email in stack.registered if await stored_user(stack.auth, email) is None]


@asynccontextmanager
async def stack_on(server: PostgresServer, redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Auth and alerts (API and worker) on `server`, the evaluator beside them, each in this event loop."""
    redis = connect(redis_url)
    root = TokenRoot(Ed25519PrivateKey.generate(), tmp_path / "root.pem")
    root.public_key_file.write_text(public_pem(root.key))
    tokens = Tokens(Ed25519PrivateKey.generate(), uuid.uuid4().hex[:16])
    await root.vouch(redis, tokens.kid, public_pem(tokens.key))
    await publish_catalog(redis)
    alerts_settings = AlertsSettings(
        database_url=await durable_database(server, "alerts"),
        redis_url=redis_url,
        consumer_name="alerts-faults",
        token_root_public_key_file=root.public_key_file,
        relay_poll_s=0.05,
        catalog_min_refresh_s=0,
        consumer_reclaim_idle_ms=1000,
        consumer_block_ms=100,
        max_active_per_user=100_000,
    )
    auth_settings = make_settings(
        await durable_database(server, "auth"), redis_url, tmp_path, register_max_per_address=100_000
    )
    stop = asyncio.Event()
    evaluating = asyncio.create_task(evaluator.run(redis, EvaluatorSettings(redis_url=redis_url), stop))
    async with AsyncExitStack() as exits:
        alerts_app = await exits.enter_async_context(running(alerts_settings))
        auth_app = await exits.enter_async_context(running_app(auth_settings))
        alerts = await exits.enter_async_context(client_of(alerts_app))
        auth = await exits.enter_async_context(client_for(auth_app))
        try:
            yield Stack(server, redis, alerts, auth, tokens)
        finally:
            stop.set()
            await evaluating
            await redis.aclose()
