"""The REST half of the fake exchange: exchangeInfo, ticker/price, time, ping, and forced 429/418."""

from __future__ import annotations

import email.utils
import http
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from pricealert.devstack.fakeexchange.symbols import SymbolSpec, fmt8

STATUSES = ("TRADING", "END_OF_DAY", "HALT", "BREAK", "CANCEL_ONLY")


@dataclass
class RestFaults:
    """Scripted REST failures: the next `remaining` requests get `status` with a Retry-After header."""

    remaining: int = 0
    status: int = 429
    retry_after_s: int = 1
    requests: list[tuple[float, str]] = field(default_factory=list)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """An HTTP response with a JSON body."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    phrase = http.HTTPStatus(status).phrase
    pairs = [
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Connection", "close"),
        ("Content-Type", "application/json;charset=UTF-8"),
        ("Content-Length", str(len(raw))),
        ("X-MBX-USED-WEIGHT-1M", "1"),
        *(headers or {}).items(),
    ]
    return Response(status, phrase, Headers(pairs), raw)


def _binance_error(code: int, msg: str, status: int = 400) -> Response:
    return json_response(status, {"code": code, "msg": msg})


class RestApi:
    """Answers the public market-data endpoints from the exchange's symbol table."""

    def __init__(self, symbols: dict[str, SymbolSpec], faults: RestFaults) -> None:
        self.symbols = symbols
        self.faults = faults

    def handle(self, request: Request) -> Response:
        """Route one plain HTTP request."""
        parts = urlsplit(request.path)
        self.faults.requests.append((time.time(), request.path))
        if self.faults.remaining > 0:
            self.faults.remaining -= 1
            return json_response(
                self.faults.status,
                {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE."},
                {"Retry-After": str(self.faults.retry_after_s)},
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/api/v3/ping":
            return json_response(200, {})
        if parts.path == "/api/v3/time":
            return json_response(200, {"serverTime": int(time.time() * 1000)})
        if parts.path == "/api/v3/exchangeInfo":
            return self._exchange_info(query)
        if parts.path == "/api/v3/ticker/price":
            return self._ticker_price(query)
        return json_response(404, {"code": -1, "msg": f"Unknown endpoint {parts.path}"})

    def _selected(self, query: dict[str, str]) -> list[SymbolSpec] | Response:
        if "symbol" in query and "symbols" in query:
            return _binance_error(-1128, "Combination of optional parameters invalid.")
        names: list[str] | None = None
        if "symbol" in query:
            names = [query["symbol"]]
        elif "symbols" in query:
            try:
                parsed = json.loads(query["symbols"])
            except ValueError:
                return _binance_error(-1100, "Illegal characters found in parameter 'symbols'.")
            if not isinstance(parsed, list) or not all(isinstance(n, str) for n in parsed):
                return _binance_error(-1100, "Illegal characters found in parameter 'symbols'.")
            names = parsed
        if names is None:
            return list(self.symbols.values())
        missing = [n for n in names if n not in self.symbols]
        if missing:
            return _binance_error(-1121, "Invalid symbol.")
        return [self.symbols[n] for n in names]

    def _exchange_info(self, query: dict[str, str]) -> Response:
        status = query.get("symbolStatus")
        if status is not None and ("symbol" in query or "symbols" in query):
            return _binance_error(-1128, "Combination of optional parameters invalid.")
        if status is not None and status not in STATUSES:
            return _binance_error(-1122, "Invalid symbolStatus.")
        selected = self._selected(query)
        if isinstance(selected, Response):
            return selected
        if status is not None:
            selected = [s for s in selected if s.status == status]
        return json_response(
            200,
            {
                "timezone": "UTC",
                "serverTime": int(time.time() * 1000),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": 10},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": [s.exchange_info() for s in selected],
            },
        )

    def _ticker_price(self, query: dict[str, str]) -> Response:
        selected = self._selected(query)
        if isinstance(selected, Response):
            return selected
        status = query.get("symbolStatus")
        if status is not None:
            if "symbol" in query and selected[0].status != status:
                return _binance_error(-1220, "The symbol's status does not match the requested symbolStatus.")
            selected = [s for s in selected if s.status == status]
        rows = [{"symbol": s.symbol, "price": fmt8(s.price)} for s in selected]
        return json_response(200, rows[0] if "symbol" in query else rows)
