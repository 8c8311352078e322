"""The Binance WebSocket control protocol: SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, *_PROPERTY."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pricealert.devstack.fakeexchange.session import ClientSession

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_STREAM = re.compile(
    r"^(?:[A-Za-z0-9]+@(?:trade|aggTrade|bookTicker|miniTicker|ticker|avgPrice|depth(?:5|10|20)?(?:@100ms)?"
    r"|kline_(?:1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)(?:@\+08:00)?)"
    r"|!miniTicker@arr)$"
)
_ID_TEXT = re.compile(r"^[A-Za-z0-9]{1,36}$")


class TooManyStreams(Exception):
    """A subscription would take the connection over its stream cap."""


@dataclass(frozen=True)
class Route:
    """What a WebSocket request path asks for."""

    combined: bool
    streams: list[str]


def parse_path(path: str) -> Route | None:
    """Parse `/ws`, `/ws/<a>/<b>`, `/stream` and `/stream?streams=a/b`; None for anything else."""
    parts = urlsplit(path)
    if parts.path == "/ws" or parts.path == "/ws/":
        return Route(False, [])
    if parts.path.startswith("/ws/"):
        return Route(False, [s for s in parts.path[4:].split("/") if s])
    if parts.path in ("/stream", "/stream/"):
        raw = parse_qs(parts.query).get("streams", [""])[0]
        return Route(True, [s for s in raw.split("/") if s])
    return None


def valid_stream(name: str) -> bool:
    """Whether `name` is a well-formed stream name (unknown or uppercase symbols are still well-formed)."""
    return bool(_STREAM.match(name))


def error(code: int, msg: str, request_id: Any) -> str:
    """An error reply, as Binance sends it."""
    return json.dumps({"error": {"code": code, "msg": msg}, "id": request_id}, separators=(",", ":"))


def result(value: Any, request_id: Any) -> str:
    """A success reply."""
    return json.dumps({"result": value, "id": request_id}, separators=(",", ":"))


def _valid_id(request_id: Any) -> bool:
    if request_id is None:
        return True
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, int):
        return 0 <= request_id < 2**63
    return isinstance(request_id, str) and bool(_ID_TEXT.match(request_id))


def handle_control(session: ClientSession, text: str | bytes, *, max_streams: int) -> str:
    """Apply one control message to `session`; returns the reply frame. Raises TooManyStreams."""
    try:
        request = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return error(3, "Invalid JSON: expected value at line 1 column 1", None)
    if not isinstance(request, dict):
        return error(3, "Invalid JSON: expected an object at line 1 column 1", None)
    request_id = request.get("id")
    if not _valid_id(request_id):
        return error(2, "Invalid request: request ID must be an unsigned integer", None)
    method = request.get("method")
    if method is None:
        return error(2, "Invalid request: missing field `method`", request_id)
    if method not in METHODS:
        expected = ", ".join(f"`{m}`" for m in METHODS)
        return error(2, f"Invalid request: unknown variant `{method}`, expected one of {expected}", request_id)
    params = request.get("params", [])
    if not isinstance(params, list):
        return error(2, "Invalid request: params must be an array", request_id)
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        return _subscription(session, method, params, request_id, max_streams)
    if method == "LIST_SUBSCRIPTIONS":
        return result(list(session.streams), request_id)
    return _property(session, method, params, request_id)


def _subscription(session: ClientSession, method: str, params: list[Any], request_id: Any, max_streams: int) -> str:
    if not params or not all(isinstance(p, str) and valid_stream(p) for p in params):
        return error(2, "Invalid request: invalid stream", request_id)
    if method == "UNSUBSCRIBE":
        for name in params:
            session.streams.pop(name, None)
        return result(None, request_id)
    new = [p for p in dict.fromkeys(params) if p not in session.streams]
    if max_streams > 0 and len(session.streams) + len(new) > max_streams:
        raise TooManyStreams(f"{len(session.streams) + len(new)} streams > {max_streams}")
    for name in new:
        session.streams[name] = None
    return result(None, request_id)


def _property(session: ClientSession, method: str, params: list[Any], request_id: Any) -> str:
    if not params or not isinstance(params[0], str):
        return error(2, "Invalid request: property name must be a string", request_id)
    if params[0] != "combined":
        return error(0, "Unknown property", request_id)
    if method == "GET_PROPERTY":
        if len(params) > 1:
            return error(2, "Invalid request: too many parameters", request_id)
        return result(session.combined, request_id)
    if len(params) != 2:
        return error(2, "Invalid request: too many parameters", request_id)
    if not isinstance(params[1], bool):
        return error(1, "Invalid value type: expected Boolean", request_id)
    session.combined = params[1]
    return result(None, request_id)
