"""The browser session: /auth/login, /auth/refresh and /auth/logout with the refresh token in an HttpOnly cookie."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Cookie, Depends, Header, Request, Response, status

from pricealert.auth.api.routes.auth import client_address, read_credentials
from pricealert.auth.deps import ServiceDep, StateDep
from pricealert.auth.origins import check_origin, origin_of
from pricealert.auth.schemas import MAX_TOKEN_LENGTH, LoginRequest, SessionToken, TokenPair, error_responses
from pricealert.common.errors import AppError, Unauthorized
from pricealert.common.settings import Environment

log = structlog.get_logger()

COOKIE_NAME = "pricealert_refresh"
COOKIE_PATH = "/auth/session"


async def require_site_origin(
    request: Request,
    state: StateDep,
    origin: Annotated[
        str | None, Header(description="The page's origin; this site's own or APP_URL's, else 403.")
    ] = None,
) -> None:
    """Refuse (403) a request that a page of another site, or no browser page at all, sent."""
    host = request.headers.get("host")
    own = origin_of(f"{request.url.scheme}://{host}") if host else None
    try:
        check_origin(origin, own=own, allowed=origin_of(state.settings.app_url))
    except AppError as exc:
        log.info("auth.session.origin_refused", code=exc.code, origin=(origin or "")[:200])
        raise


router = APIRouter(prefix=COOKIE_PATH, tags=["auth"], dependencies=[Depends(require_site_origin)])

SessionCookie = Annotated[
    str | None,
    Cookie(alias=COOKIE_NAME, description="The refresh token, as POST /auth/session set it (HttpOnly)."),
]
_JSON_CREDENTIALS: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": LoginRequest.model_json_schema()}}}
}


def session_cookie(value: str, *, max_age: int, secure: bool) -> str:
    """The Set-Cookie value that stores (or, empty with max_age 0, clears) the refresh token in the browser."""
    cookie = f"{COOKIE_NAME}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return f"{cookie}; Secure" if secure else cookie


def _secure(state: StateDep) -> bool:
    return state.settings.env is Environment.PRODUCTION


def _opened(response: Response, state: StateDep, pair: TokenPair) -> SessionToken:
    lifetime = int(state.policy.refresh_ttl.total_seconds())
    response.headers.append("set-cookie", session_cookie(pair.refresh_token, max_age=lifetime, secure=_secure(state)))
    response.headers["cache-control"] = "no-store"
    return SessionToken(access_token=pair.access_token, expires_in=pair.expires_in)


def _clear_cookie_on(exc: AppError, state: StateDep) -> None:
    """A refused token is cleared from the browser; other errors (not the token's fault) leave it for a retry."""
    if exc.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
        exc.headers = {**(exc.headers or {}), "set-cookie": session_cookie("", max_age=0, secure=_secure(state))}


def _no_session() -> Unauthorized:
    return Unauthorized("No browser session: sign in with POST /auth/session.", code="no_session")


def _checked(cookie: str) -> str:
    if len(cookie) > MAX_TOKEN_LENGTH:
        raise Unauthorized("The session cookie holds no valid token.", code="invalid_token")
    return cookie


@router.post(
    "",
    response_model=SessionToken,
    openapi_extra=_JSON_CREDENTIALS,
    responses=error_responses(401, 403, 415, 422, 429),
)
async def open_session(request: Request, response: Response, state: StateDep, service: ServiceDep) -> SessionToken:
    """Sign a browser in: the access token in the answer, the refresh token in an HttpOnly cookie for these routes."""
    email, password = await read_credentials(request, forms=False)
    pair = await service.login(email, password, address=client_address(request))
    return _opened(response, state, pair)


@router.post("/refresh", response_model=SessionToken, responses=error_responses(401, 403))
async def refresh_session(
    response: Response, state: StateDep, service: ServiceDep, cookie: SessionCookie = None
) -> SessionToken:
    """A new access token for the browser's session; the cookie is rotated (a reused one ends the session)."""
    if not cookie:
        raise _no_session()
    try:
        pair = await service.refresh(_checked(cookie))
    except AppError as exc:
        _clear_cookie_on(exc, state)
        raise
    return _opened(response, state, pair)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403),
)
async def close_session(state: StateDep, service: ServiceDep, cookie: SessionCookie = None) -> Response:
    """Sign the browser out: its login session is revoked and the cookie cleared."""
    cleared = Response(status_code=status.HTTP_204_NO_CONTENT)
    cleared.headers.append("set-cookie", session_cookie("", max_age=0, secure=_secure(state)))
    if not cookie:
        return cleared
    try:
        await service.logout(_checked(cookie))
    except AppError as exc:
        _clear_cookie_on(exc, state)
        raise
    return cleared
