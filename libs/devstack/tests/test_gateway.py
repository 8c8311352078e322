"""The development gateway forwards odd but legal requests as sent, refuses oversized bodies and paths
with dot segments itself, and tells the services the client address it saw, never one the client sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from pricealert.common.api import MAX_BODY_BYTES
from pricealert.devstack.gateway import UPSTREAM_KEEPALIVE_S, GatewaySettings, create_app, server_config
from pricealert.devstack.ports import free_port
from pricealert.devstack.rawhttp import raw_request
from pricealert.testsupport.httpupstream import QuietHandler, serving

POSTED: list[int] = []
RECEIVED: list[tuple[str, list[tuple[str, str]]]] = []


class Echo(QuietHandler):
    def do_GET(self) -> None:
        RECEIVED.append((self.path, [(k.lower(), v) for k, v in self.headers.items()]))
        body = f"{self.path}|{self.headers.get('authorization', '')}".encode("latin-1", "replace")
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        received = self.rfile.read(int(self.headers.get("content-length", "0")))
        POSTED.append(len(received))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()


@pytest.fixture
def upstream() -> Iterator[str]:
    with serving(Echo) as url:
        yield url


async def test_control_characters_and_non_ascii_headers_are_forwarded_not_crashed_on(upstream: str) -> None:
    app = create_app(GatewaySettings(auth_url=upstream, alerts_url=upstream))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        encoded = await client.get("/alerts/%00?x=%16")
        assert encoded.status_code == 200 and encoded.text.startswith("/alerts/%00?x=%16")
        odd_header = await client.get("/auth/me", headers={"authorization": "Bearer токен".encode()})
        assert odd_header.status_code == 200


async def test_the_jwks_path_reaches_auth(upstream: str) -> None:
    app = create_app(GatewaySettings(auth_url=upstream, alerts_url="http://127.0.0.1:9"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        jwks = await client.get("/auth/.well-known/jwks.json")
    assert jwks.status_code == 200 and jwks.text.startswith("/auth/.well-known/jwks.json|")


async def test_bodies_over_the_cap_are_refused_at_the_gateway_and_never_forwarded(upstream: str) -> None:
    POSTED.clear()
    app = create_app(GatewaySettings(auth_url=upstream, alerts_url=upstream))

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 50_000

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        declared = await client.post("/auth/login", content=b"x" * 2_000_000)
        streamed = await client.post("/auth/login", content=chunked())
        at_cap = await client.post("/alerts", content=b"x" * MAX_BODY_BYTES)
    for refused in (declared, streamed):
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "payload_too_large"
    assert at_cap.status_code == 200
    assert POSTED == [MAX_BODY_BYTES]


@pytest.fixture
async def served_gateway(upstream: str) -> AsyncIterator[int]:
    """The gateway served by uvicorn as `python -m pricealert.devstack.gateway` serves it; yields its port."""
    RECEIVED.clear()
    server = uvicorn.Server(server_config(GatewaySettings(auth_url=upstream, alerts_url=upstream, port=free_port())))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield server.config.port
    server.should_exit = True
    await task


async def test_forwarding_headers_are_replaced_by_the_peer_address(served_gateway: int) -> None:
    """From loopback too: the gateway's own server believes no X-Forwarded-For either."""
    forged = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-client-ip", "203.0.113.9"),
    ]
    response = await raw_request("127.0.0.1", served_gateway, "GET", b"/auth/me", headers=forged)

    assert response.status == 200
    [(path, headers)] = RECEIVED
    assert path == "/auth/me"
    forwarding = sorted((k, v) for k, v in headers if k.startswith("x-") or k == "forwarded")
    assert forwarding == [("x-forwarded-for", "127.0.0.1"), ("x-forwarded-proto", "http"), ("x-real-ip", "127.0.0.1")]
    # The Host the client named, as nginx passes it: the auth service checks a browser's Origin against it.
    assert [v for k, v in headers if k == "host"] == [f"127.0.0.1:{served_gateway}"]


DOT_SEGMENT_PATHS = [
    b"/auth/../metrics",
    b"/alerts/../readyz",
    b"/auth/../openapi.json",
    b"/auth/./me",
    b"/alerts/x/../../metrics",
    b"/auth/%2e%2e/metrics",
    b"/auth/%2E%2e/metrics",
    b"/auth/.%2e/metrics",
    b"/auth/..%2fmetrics",
    b"/auth/..%2Fmetrics",
    b"/auth/x%2f..%2f..%2fmetrics",
    b"/auth/..\\metrics",
    b"/auth/..%5cmetrics",
    b"/auth/..%5Cmetrics",
    b"/auth//../metrics",
    b"//metrics",
    b"/alerts//x",
    b"/alerts/../metrics?x=1",
]


async def test_paths_with_dot_segments_are_refused_before_routing(served_gateway: int) -> None:
    answers = {p: await raw_request("127.0.0.1", served_gateway, "GET", p) for p in DOT_SEGMENT_PATHS}

    wrong = {
        p.decode(): (r.status, r.text)
        for p, r in answers.items()
        if r.status != 400 or r.json()["error"]["code"] != "bad_request"
    }
    assert wrong == {}
    assert RECEIVED == []


async def test_plain_paths_still_reach_the_services(served_gateway: int) -> None:
    """Trailing slashes, dots inside a segment and an encoded %2e that decodes to no dot segment pass."""
    paths = [b"/alerts", b"/alerts/", b"/alerts/a.b", b"/auth/..x", b"/auth/%252e%252e/metrics", b"/alerts/%00"]
    answers = [await raw_request("127.0.0.1", served_gateway, "GET", p) for p in paths]

    assert [a.status for a in answers] == [200] * len(paths)
    assert [path for path, _ in RECEIVED] == [p.decode() for p in paths]


async def test_other_paths_are_json_404s(upstream: str) -> None:
    app = create_app(GatewaySettings(auth_url=upstream, alerts_url=upstream))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        answers = [await client.get(p) for p in ("/metrics", "/auth", "/authx/me", "/alertsx", "/index.html")]
        wrong_method = await client.post("/healthz")

    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(404, "not_found")] * 5
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")


async def test_a_client_that_leaves_mid_body_is_let_go_without_an_error(upstream: str) -> None:
    app = create_app(GatewaySettings(auth_url=upstream, alerts_url=upstream))
    POSTED.clear()
    arrivals = iter([{"type": "http.request", "body": b'{"a":', "more_body": True}, {"type": "http.disconnect"}])
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return next(arrivals)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/alerts",
        "raw_path": b"/alerts",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gateway"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)  # raised ClientDisconnect (a logged traceback) before
    assert sent[0]["type"] == "http.response.start", sent
    assert sent[0]["status"] == 400 and POSTED == [], sent


def test_idle_upstream_connections_are_dropped_before_the_services_close_them() -> None:
    assert uvicorn.Config(app=create_app).timeout_keep_alive > UPSTREAM_KEEPALIVE_S
