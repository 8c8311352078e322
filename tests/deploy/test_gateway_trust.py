"""The gateway's trust probes, against nginx and the development gateway (the docs process of the same stack),
which must answer them alike: forged client addresses, dot segments, redirects naming an internal address."""

from __future__ import annotations

import httpx
import pytest
from gateway_testkit import Stack, register_and_login

from pricealert.common import names
from pricealert.common.redisconn import connect
from pricealert.devstack.rawhttp import RawResponse, raw_request

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
    token = await register_and_login(client, f"slash-{front}@example.com")
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
