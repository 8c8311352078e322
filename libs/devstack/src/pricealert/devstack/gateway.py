"""The development gateway: one port in front of auth and alerts, one merged OpenAPI document and /docs.

It is the edge, as nginx is in production: the client address the services see is the peer's, never a
header the client sent, and a path with dot segments is refused before routing, so no path resolves to
a service's internal routes (/metrics, its own /readyz or /openapi.json) on the way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import structlog
import uvicorn
from pydantic import Field
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pricealert.common.api import MAX_BODY_BYTES, TOO_LARGE_BODY
from pricealert.common.errors import error_body
from pricealert.common.logging import configure_logging
from pricealert.common.settings import ServiceSettings, load_settings
from pricealert.devstack.apidocs import docs_routes
from pricealert.devstack.gatewayerrors import EXCEPTION_HANDLERS
from pricealert.devstack.readiness import gateway_readiness, upstream_ready
from pricealert.devstack.webpages import web_routes

log = structlog.get_logger()

# Idle upstream connections are dropped before the services' uvicorn closes them (its timeout_keep_alive, 5 s): at
# equal timeouts a request sent on a connection the service is closing fails, and the client gets a 503.
UPSTREAM_KEEPALIVE_S = 2.0

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "proxy-authorization",
    "proxy-authenticate",
    "content-length",
}
# What a client could name its address, scheme or host with: dropped, then set from the connection.
FORWARDING = {
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-scheme",
    "x-real-ip",
    "x-client-ip",
    "forwarded",
}
# The gateway's own answers carry these; the upstream's copies would double them.
OWN_RESPONSE_HEADERS = {"date", "server"}
# Encoded slashes and backslashes would turn into separators (or dot segments) somewhere downstream.
_SMUGGLED_SEPARATORS = (b"%2f", b"%5c", b"\\")
BAD_PATH = error_body(
    "bad_request", "The path may not contain dot segments, empty segments, encoded slashes or backslashes."
)


class GatewaySettings(ServiceSettings):
    """Where the gateway listens and where it forwards."""

    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default=8000, validation_alias="PORT")
    auth_url: str = Field(default="http://127.0.0.1:8101", validation_alias="AUTH_URL")
    alerts_url: str = Field(default="http://127.0.0.1:8102", validation_alias="ALERTS_URL")


def merge_openapi(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One OpenAPI document with the paths and schemas of every service."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "pricealert",
            "version": "1.0.0",
            "description": "Crypto price alerts: auth and alerts behind one gateway.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    for document in documents:
        merged["paths"].update(document.get("paths", {}))
        for section in ("schemas", "securitySchemes"):
            merged["components"][section].update(document.get("components", {}).get(section, {}))
    return merged


def path_is_plain(raw_path: bytes, path: str) -> bool:
    """Whether a path has no dot segment, empty segment, encoded slash or backslash (raw or decoded)."""
    lowered = raw_path.lower()
    if any(separator in lowered for separator in _SMUGGLED_SEPARATORS) or not path.startswith("/"):
        return False
    segments = path.split("/")[1:]
    # A trailing slash leaves one empty last segment: that is a plain (if unknown) path.
    return not any(s in {".", ".."} or (not s and i < len(segments) - 1) for i, s in enumerate(segments))


class PlainPaths:
    """Refuses (400) a path that a client, a library or a service could resolve to another route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            if not path_is_plain(raw_path.partition(b"?")[0], scope["path"]):
                await JSONResponse(BAD_PATH, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def forwarding_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """The client's headers without hop-by-hop or forwarding ones, then the client's Host (as nginx passes it,
    for the auth service's Origin check) and the gateway's own forwarding headers."""
    peer = (request.client.host if request.client else "").encode()
    headers = [
        (k, v)
        for k, v in request.headers.raw
        if (name := k.lower().decode("latin-1")) not in HOP_BY_HOP and name not in FORWARDING
    ]
    host = [(b"host", value) for name, value in request.headers.raw if name.lower() == b"host"][:1]
    return [
        *headers,
        *host,
        (b"x-forwarded-for", peer),
        (b"x-real-ip", peer),
        (b"x-forwarded-proto", request.url.scheme.encode()),
    ]


async def read_capped_body(request: Request) -> bytes | None:
    """The request body, or None if it is larger than the services accept (as nginx's client_max_body_size)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def stream_from(client: httpx.AsyncClient, base_url: str, request: Request) -> Response:
    """GET /events (Server-Sent Events): passed on chunk by chunk as the alerts API sends it, never buffered."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    url = httpx.URL(base_url).copy_with(raw_path=raw_path + (b"?" + query if query else b""))
    outgoing = client.build_request(
        "GET", url, headers=forwarding_headers(request), timeout=httpx.Timeout(30.0, connect=5.0, read=3600.0)
    )
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.TransportError as exc:
        return JSONResponse(
            error_body("upstream_unavailable", "The alerts service is not reachable.", str(exc)), status_code=503
        )
    headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP | OWN_RESPONSE_HEADERS}
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=headers,
        background=BackgroundTask(upstream.aclose),  # the client left: so does the upstream connection
    )


def create_app(settings: GatewaySettings) -> Starlette:
    """The gateway application."""
    upstreams = {"auth": settings.auth_url.rstrip("/"), "alerts": settings.alerts_url.rstrip("/")}
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=5.0),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=UPSTREAM_KEEPALIVE_S),
        # No cookie jar: a Set-Cookie meant for one browser (a session's refresh token) would go out with every request.
        cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
    )

    async def proxy(request: Request) -> Response:
        service = "auth" if request.url.path.startswith("/auth") else "alerts"
        # Raw bytes, as the client sent them: re-encoding decoded paths or headers can fail on odd input.
        headers = forwarding_headers(request)
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string") or b""
        url = httpx.URL(upstreams[service]).copy_with(raw_path=raw_path + (b"?" + query if query else b""))
        # Refused here, not upstream: a service answering 413 mid-upload resets the connection under the proxy.
        try:
            body = await read_capped_body(request)
        except ClientDisconnect:  # the client left mid-body (as nginx's 499): nobody to answer, nothing to forward
            log.info("gateway.client.gone", path=request.url.path)
            return Response(status_code=400)
        if body is None:
            return JSONResponse(TOO_LARGE_BODY, status_code=413)
        try:
            upstream = await client.request(request.method, url, headers=headers, content=body)
        except httpx.InvalidURL as exc:
            return JSONResponse(
                error_body("bad_request", "The request path is not a valid URL.", str(exc)), status_code=400
            )
        except httpx.TransportError as exc:
            return JSONResponse(
                error_body("upstream_unavailable", f"The {service} service is not reachable.", str(exc)),
                status_code=503,
            )
        response_headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in OWN_RESPONSE_HEADERS and k.lower() != "content-encoding"
        }
        return Response(upstream.content, status_code=upstream.status_code, headers=response_headers)

    async def openapi(_: Request) -> JSONResponse:
        replies = await asyncio.gather(
            *(client.get(f"{u}/openapi.json") for u in upstreams.values()), return_exceptions=True
        )
        documents = [r.json() for r in replies if isinstance(r, httpx.Response) and r.status_code == 200]
        return JSONResponse(merge_openapi(documents))

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        # The alerts API reports the exchange link (ingest's view): unreachable degrades, never unreadies.
        replies = await asyncio.gather(*(upstream_ready(client, u) for u in upstreams.values()))
        body, status = gateway_readiness(dict(zip(upstreams, replies, strict=True)))
        return JSONResponse(body, status_code=status)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/openapi.json", openapi),
            *docs_routes(),
            Route("/events", partial(stream_from, client, upstreams["alerts"]), methods=["GET"]),
            Route("/events/ticket", proxy, methods=["POST"]),
            Route("/auth/{rest:path}", proxy, methods=methods),
            Route("/alerts", proxy, methods=methods),
            Route("/alerts/{rest:path}", proxy, methods=methods),
            Route("/channels", proxy, methods=methods),
            Route("/channels/{rest:path}", proxy, methods=methods),
            Route("/symbols", proxy, methods=methods),
            Route("/symbols/{rest:path}", proxy, methods=methods),
            *web_routes(),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # as the APIs: a redirect would name the Host the client sent
    app.add_middleware(PlainPaths)
    return app


def server_config(settings: GatewaySettings) -> uvicorn.Config:
    """How uvicorn serves the gateway: the edge, so it believes no client's X-Forwarded-For."""
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        proxy_headers=False,
    )


def main() -> None:
    """Serve the gateway on HOST:PORT."""
    settings = load_settings(GatewaySettings)
    configure_logging(service="gateway", level=settings.log_level, json=settings.log_json)
    uvicorn.Server(server_config(settings)).run()


if __name__ == "__main__":
    main()
