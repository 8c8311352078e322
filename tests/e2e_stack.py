"""Every service as its own process against real servers, for end-to-end tests."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR
from pricealert.devstack.ports import free_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.smtp import MailboxServer, ReceivedMail
from pricealert.testsupport.polling import eventually

SERVICES = ("auth", "alerts", "alerts-worker", "ingest", "evaluator", "notifier", "gateway")
# The pipeline on a Redis Cluster runs this many replicas of each sharded worker.
CLUSTER_REPLICAS = {"ingest": 2, "evaluator": 2, "notifier": 2}


@dataclass
class Stack:
    """The running services and the gateway URL in front of them."""

    directory: Path
    env: dict[str, str]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    # What one service gets on top of `env` (e.g. its own REDIS_URL), by service name.
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.env['PORT']}"

    def start(self, *names: str) -> None:
        """Start the named services (all when none are named)."""
        for name in names or SERVICES:
            env = {**self.env, **self.service_env.get(name, {})}
            self.processes[name] = ServiceProcess(name, env, log_path=self.directory / f"{name}.log").start()

    def start_replica(self, service: str, n: int) -> None:
        """Start replica `n` of `service`, named `<service>-<n>` (its process key, log file and consumer name)."""
        name = f"{service}-{n}"
        env = {**self.env, **self.service_env.get(service, {}), "CONSUMER_NAME": name}
        self.processes[name] = ServiceProcess(service, env, log_path=self.directory / f"{name}.log").start()

    def stop(self) -> dict[str, int | None]:
        """Stop every service with SIGTERM, all at once (each drains on its own); returns their exit codes.

        From a test's event loop call it in a thread (`asyncio.to_thread`): the fake exchange and other servers
        in that loop must keep answering while the services close their connections to them.
        """
        with ThreadPoolExecutor(max_workers=max(1, len(self.processes))) as pool:
            stopped = {name: pool.submit(process.stop) for name, process in self.processes.items()}
        return {name: future.result() for name, future in stopped.items()}

    def logs(self) -> str:
        """Every service's log, for a failing test's report."""
        return "\n".join(
            f"===== {p.name}\n{p.log_path.read_text(errors='replace')[-6000:]}"
            for p in self.processes.values()
            if p.log_path and p.log_path.exists()
        )

    async def wait_ready(self, within: float = 60.0) -> None:
        """Wait until the gateway reports every API ready."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError("the stack did not become ready:\n" + self.logs())


def stack_environment(
    directory: Path, *, redis_url: str, database_url: str, smtp_port: int, exchange_ws_url: str, exchange_rest_url: str
) -> dict[str, str]:
    """Environment variables that point every service at the test's servers."""
    if database_url.startswith("sqlite"):
        auth_db, alerts_db = f"sqlite:///{directory / 'auth.db'}", f"sqlite:///{directory / 'alerts.db'}"
    else:
        auth_db = alerts_db = database_url
    auth_port, alerts_port, gateway_port = free_port(), free_port(), free_port()
    return {
        "ENV": "test",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": redis_url,
        "AUTH_DATABASE_URL": auth_db,
        "ALERTS_DATABASE_URL": alerts_db,
        "AUTH_KEY_DIR": str(directory / "keys"),
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(directory / "keys" / ROOT_PUBLIC_KEY_IN_KEY_DIR),
        "AUTH_BCRYPT_ROUNDS": "4",
        "AUTH_PORT": str(auth_port),
        "ALERTS_PORT": str(alerts_port),
        "AUTH_URL": f"http://127.0.0.1:{auth_port}",
        "ALERTS_URL": f"http://127.0.0.1:{alerts_port}",
        "PORT": str(gateway_port),
        "APP_URL": f"http://127.0.0.1:{gateway_port}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_TLS": "none",
        "BINANCE_WS_URL": exchange_ws_url,
        "BINANCE_REST_URL": exchange_rest_url,
        # The tests' webhook and Apprise receivers listen on 127.0.0.1, which the SSRF guard refuses by default.
        "CHANNELS_ALLOW_PRIVATE_TARGETS": "true",
    }


def alert_mails(mailbox: MailboxServer) -> list[ReceivedMail]:
    """The alert mails among everything the SMTP server accepted (not the verification mails and notices)."""
    return [m for m in list(mailbox.mails) if str(m.message["Message-ID"]).startswith("<trigger.")]


async def verification_link(mailbox: MailboxServer, email: str, within: float = 20.0) -> str:
    """The link of the newest verification mail to `email` (the page's `/#/verify?token=…`), once it has arrived."""

    async def newest() -> str | None:
        links = [m for m in list(mailbox.mails) if m.recipients == [email] and m.message["X-Pricealert-Verify-Token"]]
        if not links:
            return None
        return next(line.strip() for line in links[-1].text().splitlines() if "/#/verify?token=" in line)

    return str(await eventually(newest, within=within, what=f"the verification mail to {email}"))


def token_of(link: str) -> str:
    """The token a verification link carries in its fragment, which the page posts to the API."""
    [token] = parse_qs(urlsplit(urlsplit(link).fragment).query)["token"]
    return token


async def register_verified(client: httpx.AsyncClient, mailbox: MailboxServer, email: str, password: str) -> None:
    """Register, then do what the page the mail's link opens does: post the link's token to /auth/verify."""
    registered = await client.post("/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 202, registered.text
    token = token_of(await verification_link(mailbox, email.lower()))
    verified = await client.post("/auth/verify", json={"token": token})
    assert verified.status_code == 200 and verified.json()["status"] == "verified", verified.text


async def create_alert(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """POST /alerts, waiting out the moment before ingest has published the symbol catalog."""

    async def attempt() -> dict[str, Any] | None:
        response = await client.post("/alerts", json=body, headers=headers)
        if response.status_code == 503:
            return None
        assert response.status_code == 201, response.text
        return dict(response.json())

    return dict(await eventually(attempt, within=20, what="symbol catalog"))


async def fire_one_alert(
    url: str,
    exchange: Any,
    mailbox: MailboxServer,
    *,
    email: str,
    symbol: str,
    target: str,
    trade_price: str,
    failed_attempts: int = 0,
) -> dict[str, Any]:
    """Register and verify, create an `above` alert, play a trade across it and wait for its mail: the alert then.

    `failed_attempts`: the SMTP server refuses the alert mail's first attempts (4xx), not the verification mail.
    """
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        password = "s3cret-pass"
        await register_verified(client, mailbox, email, password)
        if failed_attempts:
            mailbox.handler.fail_next(failed_attempts)
        login = await client.post("/auth/login", json={"email": email, "password": password})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        alert = await create_alert(client, headers, {"symbol": symbol, "target_price": target, "condition": "above"})
        stream = f"{symbol.lower()}@trade"
        await exchange.wait_for(lambda: stream in exchange.subscriptions(), within=10, what=f"ingest on {stream}")
        await exchange.play_trade(symbol, trade_price)

        async def sent() -> dict[str, Any] | None:
            body = dict((await client.get(f"/alerts/{alert['id']}", headers=headers)).json())
            return body if body["delivery_status"] == "sent" else None

        return dict(await eventually(sent, within=20, what="alert triggered and its mail sent"))
