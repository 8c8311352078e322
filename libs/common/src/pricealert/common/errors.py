"""Domain errors and the one JSON error shape every API answers with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import OutOfMemoryError
from sqlalchemy.exc import DBAPIError
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


def database_unavailable(message: str = "The database is not reachable; try again shortly.") -> ServiceUnavailable:
    """What a request answers while its database cannot be reached (refused, restarting, connection lost) or does
    not answer in time (a statement or lock timeout)."""
    return ServiceUnavailable(message, code="database_unavailable", headers={"Retry-After": "1"})


# SQLSTATE classes of a database that is away or busy rather than of a wrong request: connection exception,
# insufficient resources (too many clients), operator intervention (shutdown, crash, statement timeout).
_AWAY_CLASSES = ("08", "53", "57")
_TIMEOUTS = frozenset({"57014", "55P03"})  # query_canceled (statement_timeout), lock_not_available (lock_timeout)
_LOST = (
    ConnectionError,
    TimeoutError,
    SQLAlchemyOperationalError,
    SQLAlchemyInterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InternalClientError,  # asyncpg refusing statements after a backend's FATAL farewell
)


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it wraps (a driver's error under SQLAlchemy's, a cause), a few levels deep."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return
        yield seen
        seen = getattr(seen, "orig", None) or seen.__cause__


def _sqlstate(exc: BaseException) -> str:
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else ""


def database_away(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps) says the database is unreachable, shutting down or timed out: retry later."""
    return any(
        isinstance(e, _LOST)
        or getattr(e, "connection_invalidated", False) is True  # SQLAlchemy found the connection lost
        or (isinstance(e, AppError) and e.code == "database_unavailable")
        or _sqlstate(e)[:2] in _AWAY_CLASSES
        or _sqlstate(e) in _TIMEOUTS
        for e in _wrapped(exc)
    )


def database_timed_out(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps) is a statement or lock timeout."""
    return any(_sqlstate(e) in _TIMEOUTS for e in _wrapped(exc))


def database_unavailable_for(exc: BaseException) -> ServiceUnavailable:
    """The 503 for a database that is away (`database_away(exc)`), saying whether it timed out."""
    if database_timed_out(exc):
        return database_unavailable("The database did not answer in time; try again shortly.")
    return database_unavailable()


def redis_out_of_memory() -> ServiceUnavailable:
    """What a request answers while Redis refuses writes (maxmemory reached with noeviction)."""
    return ServiceUnavailable(
        "The service cannot store anything right now; try again shortly.",
        code="redis_out_of_memory",
        headers={"Retry-After": "5"},
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
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        if exc.status_code == 503 and isinstance(exc.__cause__, OutOfMemoryError):  # one code for every such 503
            log.warning("redis.out_of_memory", path=request.url.path, error=str(exc.__cause__).splitlines()[0])
            exc = redis_out_of_memory()
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

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        # Any DBAPIError: the driver's errors of a server going away or a statement cancelled by its timeout reach
        # SQLAlchemy as its generic DBAPIError, not OperationalError.
        if not database_away(exc):
            return await _unexpected(request, exc)
        log.warning("database.unavailable", path=request.url.path, error=str(exc).splitlines()[0])
        return await _app_error(request, database_unavailable_for(exc))

    @app.exception_handler(OutOfMemoryError)
    async def _redis_full(request: Request, exc: OutOfMemoryError) -> JSONResponse:
        # Redis at maxmemory with noeviction refuses every write: nothing was stored, the client may retry.
        refusal = redis_out_of_memory()
        refusal.__cause__ = exc
        return await _app_error(request, refusal)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request.failed", path=request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal_error", "Something went wrong on our side."), status_code=500)
