"""The development gateway answers its own errors in the APIs' JSON shape: an unknown path or method (GET, HEAD,
any other), a mounted folder without the file, and a bug of its own."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from structlog.testing import capture_logs

from pricealert.devstack.gateway import GatewaySettings, create_app
from pricealert.devstack.gatewayerrors import EXCEPTION_HANDLERS

NOWHERE = "http://127.0.0.1:9"


async def test_unknown_routes_and_methods_are_json_errors() -> None:
    app = create_app(GatewaySettings(auth_url=NOWHERE, alerts_url=NOWHERE))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        missing = [await client.request(m, p) for m, p in [("GET", "/nope"), ("PUT", "/nope/x"), ("GET", "/docs/")]]
        head = await client.head("/nope")
        wrong = [await client.request(m, p) for m, p in [("DELETE", "/docs"), ("POST", "/healthz"), ("PUT", "/events")]]

    assert [(r.status_code, r.json()["error"]["code"]) for r in missing] == [(404, "not_found")] * 3
    assert head.status_code == 404 and head.headers["content-type"] == "application/json"
    assert [(r.status_code, r.json()["error"]["code"]) for r in wrong] == [(405, "method_not_allowed")] * 3
    assert all("allow" in r.headers for r in wrong)


async def test_a_mounted_folder_without_the_file_and_a_bug_are_json_errors(tmp_path: Path) -> None:
    """The handlers as the gateway installs them, on routes of the kinds the page adds (a Mount of files)."""

    async def broken(_: Request) -> Response:
        raise RuntimeError("a bug")

    app = Starlette(
        routes=[Route("/broken", broken), Mount("/static", StaticFiles(directory=str(tmp_path)))],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        no_file = await client.get("/static/nope.js")
        posted = await client.post("/static/nope.js")
        with capture_logs() as logs:
            bug = await client.get("/broken")

    assert (no_file.status_code, no_file.json()["error"]["code"]) == (404, "not_found")
    assert (posted.status_code, posted.json()["error"]["code"]) == (405, "method_not_allowed")
    assert (bug.status_code, bug.json()["error"]["code"]) == (500, "internal_error")
    assert [e["event"] for e in logs] == ["gateway.request_failed"]
