"""The development gateway's own errors in the APIs' JSON shape, as nginx answers them: never plain text."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from pricealert.common.errors import error_body

log = structlog.get_logger()


async def http_error(_: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404 and 405 (no route, a Mount with no file, a method no route has)."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = "No such route." if exc.status_code == 404 else exc.detail
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug in the gateway: logged, answered as the APIs answer theirs."""
    log.error("gateway.request_failed", path=request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "Something went wrong on our side."), status_code=500)


EXCEPTION_HANDLERS = {HTTPException: http_error, Exception: internal_error}
