"""The development gateway forwards odd but legal requests as sent and refuses oversized bodies itself."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from pricealert.common.api import MAX_BODY_BYTES
from pricealert.devstack.gateway import GatewaySettings, create_app

POSTED: list[int] = []


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
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

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


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
