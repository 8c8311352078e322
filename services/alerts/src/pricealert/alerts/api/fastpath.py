"""POST /alerts and GET /alerts answered as plain ASGI: the API's two hot calls without FastAPI's machinery.

FastAPI's routing, dependency solving and request objects cost more CPU than the work of these calls.
Only requests this module fully understands are answered here: a JSON object that validates, a plain
query string. Every other request goes, body and all, to the FastAPI routes, which answer it as they
always did (their validation errors included); errors raised here go to the app's own exception handlers.
"""

from __future__ import annotations

import inspect
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pricealert.alerts.api.render import alert_json, page_json
from pricealert.alerts.api.routes import alerts as routes
from pricealert.alerts.auth import User, authenticate
from pricealert.alerts.deps import AppState
from pricealert.alerts.models import AlertStatus
from pricealert.alerts.schemas import AlertCreate, load_json
from pricealert.common.events import Condition

PATH = "/alerts"
# A create body is a few hundred bytes; a longer one is left to FastAPI.
MAX_BODY_BYTES = 16 * 1024
_JSON = b"application/json"
_NUMBER = re.compile(rb"[1-9][0-9]{0,6}")
_SYMBOL = re.compile(rb"[A-Za-z0-9]{1,%d}" % routes.MAX_SYMBOL)
_STATUSES = {s.value.encode(): s for s in AlertStatus}
_CONDITIONS = {c.value.encode(): c for c in Condition}


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The parameters of GET /alerts."""

    page: int = 1
    page_size: int = 20
    status: AlertStatus | None = None
    symbol: str | None = None
    condition: Condition | None = None


def _number_up_to(limit: int) -> Callable[[bytes], int | None]:
    def parse(raw: bytes) -> int | None:
        return int(raw) if _NUMBER.fullmatch(raw) and int(raw) <= limit else None

    return parse


def _symbol(raw: bytes) -> str | None:
    return raw.decode() if _SYMBOL.fullmatch(raw) else None


_PARAMETERS: dict[bytes, tuple[str, Callable[[bytes], Any]]] = {
    b"page": ("page", _number_up_to(routes.MAX_PAGE)),
    b"page_size": ("page_size", _number_up_to(routes.MAX_PAGE_SIZE)),
    b"status": ("status", _STATUSES.get),
    b"symbol": ("symbol", _symbol),
    b"condition": ("condition", _CONDITIONS.get),
}


def parse_query(query: bytes) -> ListQuery | None:
    """The parameters of a plain, valid query string; None for anything else (FastAPI judges those)."""
    values: dict[str, Any] = {}
    for part in query.split(b"&") if query else ():
        name, sep, raw = part.partition(b"=")
        known = _PARAMETERS.get(name)
        if known is None or not sep or known[0] in values:
            return None
        value = known[1](raw)
        if value is None:
            return None
        values[known[0]] = value
    return ListQuery(**values)


def bearer_token(authorization: bytes | None) -> str | None:
    """The token of an `Authorization: Bearer` header, as FastAPI's OAuth2PasswordBearer reads it."""
    if not authorization:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _first_headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """The first Authorization and Content-Type headers (as Starlette's Headers.get finds them)."""
    authorization = content_type = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value
        elif name == b"content-type" and content_type is None:
            content_type = value
    return authorization, content_type


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read and the whole body; None when the client left or the body is too long here."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives back `messages` first, then reads on."""
    pending = deque(messages)

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed


async def _send_json(send: Send, status: int, body: bytes) -> None:
    """The same two messages a Starlette Response with media type application/json sends."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode("latin-1")), (b"content-type", _JSON)],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _route(method: str) -> APIRoute:
    for route in routes.router.routes:
        if isinstance(route, APIRoute) and route.path == PATH and method in (route.methods or ()):
            return route
    raise LookupError(f"no {method} {PATH} route")


class FastRoutes:
    """Answers POST and GET /alerts itself when it can, and hands every other request to `app`.

    Installed as the innermost middleware: request ids, the body cap and metrics still wrap it.
    """

    def __init__(self, app: ASGIApp, *, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self.create_route = _route("POST")
        self.list_route = _route("GET")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and not scope.get("root_path"):
            state: AppState | None = getattr(self.api.state, "alerts", None)
            method = scope["method"]
            if state is not None and method == "POST":
                await self._create(state, scope, receive, send)
                return
            query = parse_query(scope["query_string"]) if state is not None and method == "GET" else None
            if state is not None and query is not None:
                await self._list(state, query, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _create(self, state: AppState, scope: Scope, receive: Receive, send: Send) -> None:
        authorization, content_type = _first_headers(scope)
        messages, body = await _read_body(receive)
        data: Any = None
        if body is not None and content_type == _JSON:
            try:
                data = load_json(body)
            except Exception:  # FastAPI's route tells the client what is wrong with it
                data = None
        if not isinstance(data, dict):
            await self.app(scope, _replay(messages, receive), send)
            return
        scope.update(route=self.create_route, endpoint=self.create_route.endpoint, path_params={})
        # FastAPI's order: a body that is JSON, then the token, then the body's fields.
        user = await self._authenticate(state, authorization, scope, receive, send)
        if user is None:
            return
        try:
            alert_in = AlertCreate.model_validate(data)
        except ValidationError:
            await self.app(scope, _replay(messages, receive), send)
            return
        try:
            alert = await state.service.create(user, alert_in)
        except Exception as exc:
            await self._handle(exc, scope, receive, send)
            return
        await _send_json(send, 201, alert_json(alert))

    async def _list(self, state: AppState, query: ListQuery, scope: Scope, receive: Receive, send: Send) -> None:
        scope.update(route=self.list_route, endpoint=self.list_route.endpoint, path_params={})
        user = await self._authenticate(state, _first_headers(scope)[0], scope, receive, send)
        if user is None:
            return
        try:
            result = await state.service.list(
                user,
                status=query.status,
                symbol=query.symbol,
                page=query.page,
                page_size=query.page_size,
                condition=query.condition,
            )
        except Exception as exc:
            await self._handle(exc, scope, receive, send)
            return
        await _send_json(
            send,
            200,
            page_json(
                result.items,
                total=result.total,
                page=query.page,
                page_size=query.page_size,
                path=scope["path"],
                status=None if query.status is None else query.status.value,
                symbol=query.symbol,
                condition=None if query.condition is None else query.condition.value,
            ),
        )

    async def _authenticate(
        self, state: AppState, authorization: bytes | None, scope: Scope, receive: Receive, send: Send
    ) -> User | None:
        """The caller; None once the error answer has been sent."""
        try:
            return await authenticate(bearer_token(authorization), state.keys, state.verified_tokens)
        except Exception as exc:
            await self._handle(exc, scope, receive, send)
            return None

    async def _handle(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer with the app's handler for `exc`, as Starlette's ExceptionMiddleware would; re-raise otherwise."""
        handler = None
        for cls in type(exc).__mro__:
            # Exception itself is ServerErrorMiddleware's, outside this middleware: it must see the exception.
            if cls is not Exception and cls in self.api.exception_handlers:
                handler = self.api.exception_handlers[cls]
                break
        if handler is None:
            raise exc
        answer = handler(Request(scope, receive), exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)
