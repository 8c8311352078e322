"""The gateway's /readyz: every service's readiness, and the exchange link the alerts API reports (degraded when
the exchange is unreachable, which never makes the system unready)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from pricealert.devstack.gateway import GatewaySettings, create_app

UNREACHABLE = {"state": "unreachable", "url": "https://api.binance.com", "error": "connection refused", "since": None}
CONNECTED = {"state": "connected", "url": "https://api.binance.com", "error": None, "since": None}


class Readiness(BaseHTTPRequestHandler):
    answer: tuple[int, dict[str, Any]] = (200, {"status": "ready"})

    def do_GET(self) -> None:
        status, body = self.answer
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


def serve(answer: tuple[int, dict[str, Any]]) -> tuple[HTTPServer, str]:
    handler = type("Answer", (Readiness,), {"answer": answer})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def servers() -> Iterator[list[HTTPServer]]:
    started: list[HTTPServer] = []
    yield started
    for server in started:
        server.shutdown()


async def gateway_readyz(servers: list[HTTPServer], alerts: tuple[int, dict[str, Any]], auth_up: bool = True) -> Any:
    alerts_server, alerts_url = serve(alerts)
    auth_server, auth_url = serve((200 if auth_up else 503, {"status": "ready" if auth_up else "not_ready"}))
    servers += [alerts_server, auth_server]
    app = create_app(GatewaySettings(auth_url=auth_url, alerts_url=alerts_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        response = await client.get("/readyz")
    return response.status_code, response.json()


async def test_an_unreachable_exchange_is_degraded_not_unready(servers: list[HTTPServer]) -> None:
    status, body = await gateway_readyz(servers, (200, {"status": "ready", "exchange": UNREACHABLE}))
    assert status == 200
    assert body == {"status": "degraded", "services": {"auth": True, "alerts": True}, "exchange": UNREACHABLE}


async def test_a_connected_exchange_is_ready_and_passed_through(servers: list[HTTPServer]) -> None:
    status, body = await gateway_readyz(servers, (200, {"status": "ready", "exchange": CONNECTED}))
    assert (status, body["status"], body["exchange"]) == (200, "ready", CONNECTED)


async def test_a_service_not_ready_is_503_whatever_the_exchange(servers: list[HTTPServer]) -> None:
    status, body = await gateway_readyz(servers, (200, {"status": "ready", "exchange": UNREACHABLE}), auth_up=False)
    assert status == 503 and body["status"] == "not_ready" and body["services"] == {"auth": False, "alerts": True}
    assert body["exchange"] == UNREACHABLE


async def test_alerts_away_means_no_exchange_known(servers: list[HTTPServer]) -> None:
    app = create_app(GatewaySettings(auth_url="http://127.0.0.1:9", alerts_url="http://127.0.0.1:9"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "services": {"auth": False, "alerts": False}, "exchange": None}
