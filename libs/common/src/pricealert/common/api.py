"""What every HTTP API shares: error shape, health endpoints, request logging, body size cap, NUL refusal."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pricealert.common.errors import install_error_handlers
from pricealert.common.requestguard import (
    MAX_BODY_BYTES,
    TOO_LARGE_BODY,
    first_headers,
    nul_location,
    nul_refusal,
    send_json,
    take_body,
)

log = structlog.get_logger()

ReadinessCheck = Callable[[], Awaitable[bool]]
# More of the readiness body (e.g. the alerts API's exchange link); never changes the status code.
ReadinessDetails = Callable[[], Awaitable[dict[str, Any]]]
__all__ = ["MAX_BODY_BYTES", "TOO_LARGE_BODY", "GuardAndLogMiddleware", "install_common"]


class GuardAndLogMiddleware:
    """Refuse oversized bodies (413) and NUL characters (422), tag each request with an id, log it at debug level.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a task group and memory streams per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        heads = first_headers(scope)
        taken = await take_body(heads, receive, send)
        if taken is None:
            return
        body, receive = taken
        rid_bytes = heads[1] or uuid.uuid4().hex.encode()
        rid = rid_bytes.decode("latin-1")
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid_bytes))
                message = {**message, "headers": headers}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=rid)
        started = time.perf_counter()
        try:
            nul = nul_location(scope, body, heads[2])
            if nul is None:
                await self.app(scope, receive, send_with_id)
            else:
                await send_json(send_with_id, 422, nul_refusal(nul))
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        # Building the event is not free even when it is filtered out later: check the level first.
        if log.is_enabled_for(logging.DEBUG):
            log.debug(
                "request.completed",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                request_id=rid,
            )


def install_common(app: FastAPI, *, ready: ReadinessCheck, details: ReadinessDetails | None = None) -> None:
    """Error handlers, /healthz, /readyz, a body-size cap, the NUL refusal and request logging for one app."""
    # A trailing slash is an unknown route (404), not a redirect: the redirect's absolute Location is built
    # from the Host the service saw, which behind a gateway is the service's own internal address.
    app.router.redirect_slashes = False
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ok = await ready()
        body: dict[str, Any] = {"status": "ready" if ok else "not_ready"}
        if details is not None:
            body.update(await details())
        return JSONResponse(body, status_code=200 if ok else 503)

    app.add_middleware(GuardAndLogMiddleware)
