"""Domain errors and the one JSON error shape every API answers with."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError as SQLAlchemyInterfaceError
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger()


class AppError(Exception):
    """An error a client caused or should know about; rendered as {"error": {code, message, details}}."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class NotFound(AppError):
    """The resource does not exist, or belongs to someone else."""

    status_code = 404
    code = "not_found"


class Conflict(AppError):
    """The request clashes with the current state."""

    status_code = 409
    code = "conflict"


class Unauthorized(AppError):
    """Missing, invalid or expired credentials."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "Not authenticated", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(AppError):
    """Authenticated, but not allowed."""

    status_code = 403
    code = "forbidden"


class InvalidInput(AppError):
    """A well-formed request whose content breaks a rule."""

    status_code = 422
    code = "validation_error"


class TooManyRequests(AppError):
    """A rate limit was hit; Retry-After says when to come back."""

    status_code = 429
    code = "too_many_requests"

    @classmethod
    def retry_after(cls, message: str, *, code: str, seconds: int) -> TooManyRequests:
        """The 429 of a limit that frees up in `seconds` (at least 1), in the details and in Retry-After."""
        seconds = max(int(seconds), 1)
        return cls(message, code=code, details={"retry_after_s": seconds}, headers={"Retry-After": str(seconds)})


class ServiceUnavailable(AppError):
    """A dependency the request needs is not reachable right now."""

    status_code = 503
    code = "service_unavailable"


def database_unavailable() -> ServiceUnavailable:
    """What a request answers while its database cannot be reached (refused, restarting, connection lost)."""
    return ServiceUnavailable(
        "The database is not reachable; try again shortly.", code="database_unavailable", headers={"Retry-After": "1"}
    )


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The stable error shape."""
    return {"error": {"code": code, "message": message, "details": details}}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, including FastAPI's own, in the stable shape."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse(
            error_body("validation_error", "The request is invalid.", jsonable_encoder(details)), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(SQLAlchemyOperationalError)
    @app.exception_handler(SQLAlchemyInterfaceError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database.unavailable", path=request.url.path, error=str(exc).splitlines()[0])
        return await _app_error(request, database_unavailable())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request.failed", path=request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal_error", "Something went wrong on our side."), status_code=500)
