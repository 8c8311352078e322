"""What every HTTP API shares: error shape, health endpoints, request logging, body size cap."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from pricealert.common.errors import error_body, install_error_handlers

log = structlog.get_logger()

ReadinessCheck = Callable[[], Awaitable[bool]]
MAX_BODY_BYTES = 64 * 1024


def install_common(app: FastAPI, *, ready: ReadinessCheck) -> None:
    """Error handlers, /healthz, /readyz, a body-size cap and request logging for one app."""
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ok = await ready()
        return JSONResponse({"status": "ready" if ok else "not_ready"}, status_code=200 if ok else 503)

    @app.middleware("http")
    async def _guard_and_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse(
                error_body("payload_too_large", f"The body may be at most {MAX_BODY_BYTES} bytes."),
                status_code=413,
            )
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug("request.completed", method=request.method, path=request.url.path,
                  status=response.status_code, ms=round(elapsed_ms, 2), request_id=request_id)
        response.headers["x-request-id"] = request_id
        return response
