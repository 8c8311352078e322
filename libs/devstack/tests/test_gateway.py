"""The development gateway forwards odd but legal requests as sent, never answering them with a 500."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from pricealert.devstack.gateway import GatewaySettings, create_app


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{self.path}|{self.headers.get('authorization', '')}".encode("latin-1", "replace")
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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
