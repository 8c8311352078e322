"""The gateway's nginx configuration, run for real: Debian's nginx on the same template as compose, in
front of locally started auth, alerts and docs processes, driven from register to a created alert, through its
body cap, a down upstream and the operator CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import jwt
from gateway_testkit import CLIENT_ADDRESS, PASSWORD, Stack, register_and_login

from pricealert.common import names
from pricealert.common.events import AccountEvent
from pricealert.common.redisconn import connect
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.common.tokens import AUDIENCE, ISSUER
from pricealert.devstack.ports import free_port
from pricealert.testsupport.nginx import Nginx


async def test_register_login_and_create_an_alert_through_nginx(stack: Stack, client: httpx.AsyncClient) -> None:
    token = await register_and_login(client, "ada@example.com")
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
    changed = await client.patch(
        f"/alerts/{alert['id']}", headers=auth, json={"target_price": "71000", "status": "paused"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["target_price"], changed.json()["status"], changed.json()["version"]) == (
        "71000",
        "paused",
        2,
    )
    firings = await client.get(f"/alerts/{alert['id']}/firings", headers=auth)
    assert firings.status_code == 200 and firings.json()["total"] == 0
    assert listed.status_code == 200 and [a["id"] for a in listed.json()["items"]] == [alert["id"]]
    channel = await client.post("/channels", headers=auth, json={"kind": "email", "address": "ada@example.com"})
    assert channel.status_code == 201, channel.text
    channels = await client.get("/channels", headers=auth)
    assert [c["id"] for c in channels.json()["items"]] == [channel.json()["id"]]
    link = await client.get("/channels/verify", params={"token": "no-such-token"})
    assert link.status_code == 400 and link.json()["error"]["code"] == "invalid_verification_token"
    logged = [line for line in stack.nginx.access_log() if line["request_id"] == "trace-me-42"]
    assert logged and logged[0]["client"] == CLIENT_ADDRESS and logged[0]["status"] == 201


async def test_the_jwks_verifies_a_token_through_nginx_and_is_in_the_merged_openapi(
    stack: Stack,
    client: httpx.AsyncClient,
) -> None:
    token = await register_and_login(client, "jwks@example.com")
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
    await register_and_login(client, "linked@example.com")
    redis = connect(stack.env["REDIS_URL"])
    try:
        events = [AccountEvent.from_fields(f) for _, f in await redis.xrange(names.ACCOUNT_EVENTS)]
        assert await redis.exists(names.signup_counter_key("address", CLIENT_ADDRESS)) == 1
    finally:
        await redis.aclose()
    [token] = [e.token for e in events if e.email == "linked@example.com"]
    verified = await client.get("/auth/verify", params={"token": token})
    assert verified.status_code == 200 and verified.json()["status"] == "verified", verified.text


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
    assert "patch" in paths["/alerts/{alert_id}"] and "/alerts/{alert_id}/firings" in paths
    assert "/channels" in paths and "/channels/{channel_id}/test" in paths and "/channels/verify" in paths
    assert docs.status_code == 200 and "/docs/assets/swagger-initializer.js" in docs.text  # which loads /openapi.json
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
    token = await register_and_login(client, "grace@example.com")
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
            entries: Any = await redis.xrange(names.alert_events_stream(shard_of("BTCUSDT", DEFAULT_SHARDS)))
            created_events = [
                f for _, f in entries if f[b"alert_id"].decode() == alert_id and f[b"type"] == b"alert.created"
            ]
            if len(created_events) >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
    assert len(created_events) >= 2  # the outbox's own event, then the resync's
