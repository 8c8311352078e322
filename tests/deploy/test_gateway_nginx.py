"""The gateway's nginx configuration, run for real: Debian's nginx on the same template as compose, in
front of locally started auth, alerts and docs processes, driven from register to a created alert.

The trust probes (forged client addresses, dot segments, redirects) run against nginx and against the
development gateway (the docs process of the same stack), which must answer them alike."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from deploy_testkit import require_tool

from pricealert.common import names
from pricealert.common.events import AccountEvent, CatalogSnapshot, CatalogSymbol, utc_now
from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR
from pricealert.common.publisher import publish
from pricealert.common.redisconn import connect
from pricealert.common.tokens import AUDIENCE, ISSUER
from pricealert.devstack.ports import free_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.rawhttp import RawResponse, raw_request
from pricealert.devstack.servers import temp_dir
from pricealert.testsupport.nginx import Nginx, nginx_binary

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


async def _publish_catalog(redis_url: str) -> None:
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


def _wait_ready(stack: Stack, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.nginx.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the stack behind nginx did not become ready:\n" + stack.logs())


@pytest.fixture(scope="module")
def nginx_path() -> str:
    found = nginx_binary()
    if found is None:
        require_tool("nginx", "install Debian's nginx (`apt-get install -y nginx-light`)")
    return found


@pytest.fixture(scope="module")
def stack(nginx_path: str, redis_server_url: str) -> Iterator[Stack]:
    """One stack for the module (the redis_url fixture would flush the keys and catalog under it)."""
    directory = temp_dir("pricealert-gateway-")
    asyncio.run(_publish_catalog(redis_server_url))
    auth_port, alerts_port, docs_port = free_port(), free_port(), free_port()
    env = {
        "ENV": "test",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": redis_server_url,
        "AUTH_DATABASE_URL": f"sqlite:///{directory / 'auth.db'}",
        "ALERTS_DATABASE_URL": f"sqlite:///{directory / 'alerts.db'}",
        "AUTH_KEY_DIR": str(directory / "keys"),
        "AUTH_BCRYPT_ROUNDS": "4",
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(directory / "keys" / ROOT_PUBLIC_KEY_IN_KEY_DIR),
        # auth believes any peer's X-Forwarded-For (compose believes only the gateway's address): only the
        # gateway replacing the header stops a forgery.
        "AUTH_FORWARDED_ALLOW_IPS": "*",
        "AUTH_PORT": str(auth_port),
        "ALERTS_PORT": str(alerts_port),
        "HOST": "127.0.0.1",
        "PORT": str(docs_port),
        "AUTH_URL": f"http://127.0.0.1:{auth_port}",
        "ALERTS_URL": f"http://127.0.0.1:{alerts_port}",
    }
    processes = {
        name: ServiceProcess(name, env, log_path=directory / f"{name}.log").start()
        for name in ("auth", "alerts", "gateway")
    }
    nginx = Nginx(
        nginx_path,
        directory / "nginx",
        free_port(),
        {
            "AUTH_UPSTREAM": f"127.0.0.1:{auth_port}",
            "ALERTS_UPSTREAM": f"127.0.0.1:{alerts_port}",
            "DOCS_UPSTREAM": f"127.0.0.1:{docs_port}",
        },
    )
    stack = Stack(env, nginx, processes, directory)
    try:
        nginx.write_config()
        checked = nginx.check()
        assert checked.returncode == 0, checked.stderr
        nginx.start()
        _wait_ready(stack)
        yield stack
    finally:
        nginx.stop()
        for process in processes.values():
            process.stop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_ADDRESS)
    async with httpx.AsyncClient(base_url=stack.nginx.url, transport=transport, timeout=10) as http:
        yield http


async def _register_and_login(client: httpx.AsyncClient, email: str) -> str:
    registered = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


async def test_register_login_and_create_an_alert_through_nginx(stack: Stack, client: httpx.AsyncClient) -> None:
    token = await _register_and_login(client, "ada@example.com")
    auth = {"authorization": f"Bearer {token}"}

    me = await client.get("/auth/me", headers=auth)
    created = await client.post(
        "/alerts",
        headers={**auth, "x-request-id": "trace-me-42"},
        json={"symbol": "btcusdt", "target_price": "70000.5", "condition": "above"},
    )
    listed = await client.get("/alerts", headers=auth, params={"symbol": "BTCUSDT"})

    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
    assert created.status_code == 201, created.text
    alert = created.json()
    assert (alert["symbol"], alert["target_price"], alert["status"]) == ("BTCUSDT", "70000.5", "active")
    assert created.headers["x-request-id"] == "trace-me-42"  # passed through nginx to the API and back
    one = await client.get(f"/alerts/{alert['id']}", headers=auth)
    assert one.status_code == 200 and one.json()["id"] == alert["id"]
    assert listed.status_code == 200 and [a["id"] for a in listed.json()["items"]] == [alert["id"]]
    logged = [line for line in stack.nginx.access_log() if line["request_id"] == "trace-me-42"]
    assert logged and logged[0]["client"] == CLIENT_ADDRESS and logged[0]["status"] == 201


async def test_the_jwks_verifies_a_token_through_nginx_and_is_in_the_merged_openapi(
    stack: Stack,
    client: httpx.AsyncClient,
) -> None:
    token = await _register_and_login(client, "jwks@example.com")
    jwks = await client.get("/auth/.well-known/jwks.json")
    openapi = await client.get("/openapi.json")

    assert jwks.status_code == 200, jwks.text
    key = jwt.PyJWKSet.from_dict(jwks.json())[jwt.get_unverified_header(token)["kid"]]
    assert (
        jwt.decode(token, key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER)["email"]
        == "jwks@example.com"
    )
    assert "/auth/.well-known/jwks.json" in openapi.json()["paths"]


async def test_the_verification_link_and_the_registration_limit_go_through_nginx(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await _register_and_login(client, "linked@example.com")
    redis = connect(stack.env["REDIS_URL"])
    try:
        events = [AccountEvent.from_fields(f) for _, f in await redis.xrange(names.ACCOUNT_EVENTS)]
        assert await redis.exists(names.signup_counter_key("address", CLIENT_ADDRESS)) == 1
    finally:
        await redis.aclose()
    [token] = [e.token for e in events if e.email == "linked@example.com"]
    verified = await client.get("/auth/verify", params={"token": token})
    assert verified.status_code == 200 and verified.json()["status"] == "verified", verified.text


FRONTS = ["nginx", "dev-gateway"]


@pytest.mark.parametrize("front", FRONTS)
@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.3"])
async def test_the_client_address_reaches_auth_and_a_forged_one_does_not(
    stack: Stack, front: str, address: str
) -> None:
    """Every header a client could name its address with is replaced (from loopback too, which is trusted)."""
    forged = f"203.0.113.{FRONTS.index(front) * 10 + int(address.rsplit('.', 1)[1])}"
    host, port = stack.front(front)
    redis = connect(stack.env["REDIS_URL"])
    try:
        await redis.delete(names.login_failures_key("address", address))
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", transport=transport, timeout=10) as http:
            wrong = await http.post(
                "/auth/login",
                json={"email": "nobody@example.com", "password": "wrong-password"},
                headers={
                    "x-forwarded-for": forged,
                    "x-real-ip": forged,
                    "forwarded": f"for={forged}",
                    "x-forwarded-proto": "gopher",
                },
            )
        assert wrong.status_code == 401, wrong.text
        assert await redis.exists(names.login_failures_key("address", address)) == 1
        assert await redis.exists(names.login_failures_key("address", forged)) == 0
    finally:
        await redis.aclose()


# Paths that name an internal route once their dot segments are resolved (by the client, the gateway, a
# library on the way, or a service): /metrics, a service's own /readyz or /openapi.json.
DOT_SEGMENT_PROBES = [
    b"/auth/../metrics",
    b"/alerts/../readyz",
    b"/auth/../openapi.json",
    b"/alerts/../openapi.json",
    b"/auth/./../metrics",
    b"/auth//../metrics",
    b"/auth/../../metrics",
    b"/alerts/x/../../readyz",
    b"/auth/%2e%2e/metrics",
    b"/auth/%2E%2E/metrics",
    b"/auth/.%2e/metrics",
    b"/alerts/%2e%2e/readyz",
    b"/auth/..%2fmetrics",
    b"/auth/..%2Fmetrics",
    b"/alerts/..%2f..%2freadyz",
    b"/auth/%2e%2e%2fopenapi.json",
    b"/auth/..\\metrics",
    b"/auth/..%5cmetrics",
    b"/auth/..%5Cmetrics",
    b"//metrics",
    b"/auth/..;/metrics",
    b"/alerts/../metrics?x=1",
    b"/auth/%252e%252e/metrics",
    b"/_gateway/bad_request",
]


def internal_answer(response: RawResponse) -> str | None:
    """Why `response` is an internal route's answer, or None."""
    if "# HELP" in response.text or "# TYPE" in response.text:
        return "metrics"
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("info", {}).get("title") in {"pricealert auth", "pricealert alerts"}:
        return "a service's own OpenAPI document"
    if body == {"status": "ready"} or body == {"status": "not_ready"}:
        return "a service's own /readyz"
    return None


def refusal_problem(response: RawResponse) -> str | None:
    """None for a public answer (200) or a refusal in the error shape (400, 404); else what is wrong."""
    if response.status == 200:
        return None
    if response.status not in {400, 404}:
        return f"status {response.status}"
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return "a refusal not in the error shape"
    return None if set(error) == {"code", "message", "details"} else "a refusal not in the error shape"


def names_an_internal_address(stack: Stack, response: RawResponse) -> bool:
    """Whether a header or the body of `response` names a service's own address."""
    text = response.text + "".join(f"{k}: {v}" for k, v in response.headers)
    return any(address in text for address in stack.internal_addresses())


@pytest.mark.parametrize("front", FRONTS)
async def test_dot_segments_never_reach_an_internal_route(stack: Stack, front: str) -> None:
    host, port = stack.front(front)
    wrong = {}
    for target in DOT_SEGMENT_PROBES:
        response = await raw_request(host, port, "GET", target)
        why = internal_answer(response) or refusal_problem(response)
        if why is not None or names_an_internal_address(stack, response):
            wrong[target.decode()] = f"{response.status} {why}: {response.text[:120]!r}"
    assert wrong == {}, "\n".join(f"{k} -> {v}" for k, v in wrong.items())


@pytest.mark.parametrize("front", FRONTS)
async def test_no_answer_names_an_internal_address(stack: Stack, front: str, client: httpx.AsyncClient) -> None:
    """Trailing slashes are not redirected to the service's own address (they are simply not routes)."""
    token = await _register_and_login(client, f"slash-{front}@example.com")
    host, port = stack.front(front)
    wrong = {}
    for method, target in [
        ("GET", b"/alerts/"),
        ("POST", b"/alerts/"),
        ("GET", b"/auth/me/"),
        ("POST", b"/auth/login/"),
        ("GET", b"/alerts/?page=1"),
    ]:
        response = await raw_request(host, port, method, target, headers=[("authorization", f"Bearer {token}")])
        if (
            response.status != 404
            or response.json()["error"]["code"] != "not_found"
            or names_an_internal_address(stack, response)
        ):
            wrong[f"{method} {target.decode()}"] = f"{response.status} {response.headers} {response.text[:120]!r}"
    assert wrong == {}, "\n".join(f"{k} -> {v}" for k, v in wrong.items())


async def test_body_cap_health_docs_and_unknown_routes(client: httpx.AsyncClient) -> None:
    too_big = await client.post(
        "/auth/register", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"}
    )
    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    openapi = await client.get("/openapi.json")
    docs = await client.get("/docs")
    metrics = await client.get("/metrics")

    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["services"] == {"auth": True, "alerts": True}
    paths = openapi.json()["paths"]
    assert "/auth/register" in paths and "/alerts" in paths and "/alerts/{alert_id}" in paths
    assert docs.status_code == 200 and "swagger" in docs.text.lower() and "/openapi.json" in docs.text
    assert metrics.status_code == 404 and metrics.json()["error"]["code"] == "not_found"


async def test_a_down_upstream_is_a_503_in_the_error_shape(nginx_path: str, stack: Stack) -> None:
    """A second nginx whose alerts upstream has nothing listening (the stack's own stays up)."""
    nothing = free_port()
    nginx = Nginx(
        nginx_path,
        stack.directory / "nginx-down",
        free_port(),
        {
            "AUTH_UPSTREAM": f"127.0.0.1:{nothing}",
            "ALERTS_UPSTREAM": f"127.0.0.1:{nothing}",
            "DOCS_UPSTREAM": f"127.0.0.1:{nothing}",
        },
    ).start()
    try:
        async with httpx.AsyncClient(base_url=nginx.url, timeout=10) as http:
            down = await http.get("/alerts")
    finally:
        nginx.stop()

    assert down.status_code == 503
    assert down.json()["error"]["code"] == "upstream_unavailable"
    assert down.headers["retry-after"] == "2"


def _cli(stack: Stack, *args: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "pricealert.cli", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **stack.env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_operator_cli_against_the_running_stack(stack: Stack, client: httpx.AsyncClient) -> None:
    """`users create-admin` makes an admin who logs in through nginx; `alerts resync` re-publishes an alert."""
    token = await _register_and_login(client, "grace@example.com")
    created = await client.post(
        "/alerts",
        headers={"authorization": f"Bearer {token}"},
        json={"symbol": "BTCUSDT", "target_price": "60000", "condition": "below"},
    )
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]

    admin = _cli(stack, "users", "create-admin", "--email", "root@example.com", "--password", PASSWORD)
    login = await client.post("/auth/login", json={"email": "root@example.com", "password": PASSWORD})
    users = await client.get("/auth/users", headers={"authorization": f"Bearer {login.json()['access_token']}"})
    resync = await asyncio.to_thread(_cli, stack, "alerts", "resync")

    assert admin["action"] == "created"
    assert users.status_code == 200, users.text
    assert {u["email"] for u in users.json()["items"]} >= {"root@example.com", "grace@example.com"}
    assert resync["republished"] >= 1
    redis = connect(stack.env["REDIS_URL"])
    try:
        deadline = time.monotonic() + 10
        while True:
            entries: Any = await redis.xrange(names.ALERT_EVENTS)
            created_events = [
                f for _, f in entries if f[b"alert_id"].decode() == alert_id and f[b"type"] == b"alert.created"
            ]
            if len(created_events) >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
    assert len(created_events) >= 2  # the outbox's own event, then the resync's
