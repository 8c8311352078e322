"""The gateway tests' stack: auth, alerts and docs as processes behind Debian's nginx on compose's template.

Its fixtures are in this folder's conftest.py, module-scoped: each gateway test module gets a stack of its own."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx

from pricealert.common import names
from pricealert.common.events import CatalogSnapshot, CatalogSymbol, utc_now
from pricealert.common.publisher import publish
from pricealert.common.redisconn import connect
from pricealert.devstack.processes import ServiceProcess
from pricealert.testsupport.nginx import Nginx

PASSWORD = "correct-horse-battery"
CLIENT_ADDRESS = "127.0.0.2"  # the test's client connects from here, so nginx sees a non-default peer


@dataclass
class Stack:
    """auth, alerts and docs as processes, nginx in front, and the environment they share."""

    env: dict[str, str]
    nginx: Nginx
    processes: dict[str, ServiceProcess]
    directory: Path

    def front(self, name: str) -> tuple[str, int]:
        """Host and port of a gateway: nginx, or the development gateway (the docs process)."""
        return "127.0.0.1", self.nginx.port if name == "nginx" else int(self.env["PORT"])

    def internal_addresses(self) -> list[str]:
        """The services' own host:port, which no answer through a gateway may name."""
        return [self.env["AUTH_URL"].removeprefix("http://"), self.env["ALERTS_URL"].removeprefix("http://")]

    def logs(self) -> str:
        """Every log, for a failure's message."""
        parts = [
            f"== {p.name}\n{p.log_path.read_text(errors='replace')[-4000:]}"
            for p in self.processes.values()
            if p.log_path and p.log_path.exists()
        ]
        error_log = self.nginx.prefix / "error.log"
        if error_log.exists():
            parts.append(f"== nginx\n{error_log.read_text()[-4000:]}")
        return "\n".join(parts)


async def publish_catalog(redis_url: str) -> None:
    """An empty Redis with the one-symbol catalog the stack's alerts need."""
    redis = connect(redis_url)
    try:
        await redis.flushall()
        symbols = [
            CatalogSymbol(
                symbol="BTCUSDT", min_price=Decimal("0.01"), max_price=Decimal("1000000"), tick_size=Decimal("0.01")
            )
        ]
        await publish(redis, names.SYMBOL_CATALOG, CatalogSnapshot.build(symbols, utc_now()))
    finally:
        await redis.aclose()


def wait_ready(stack: Stack, within: float = 120.0) -> None:
    """Wait until nginx answers /readyz with 200."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.nginx.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the stack behind nginx did not become ready:\n" + stack.logs())


async def register_and_login(client: httpx.AsyncClient, email: str) -> str:
    """A new account's access token, through the gateway."""
    registered = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token
