"""Parsing Binance WebSocket frames into ticks, control replies and shutdown notices; trade dedupe."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from pricealert.common.events import Tick


class MalformedFrame(ValueError):
    """A frame that is neither a well-formed trade, a control reply nor a known event."""


class Trade(NamedTuple):
    """One trade as read from the exchange: a Tick's fields, without pydantic's cost on the hot path."""

    symbol: str
    price: Decimal
    trade_id: int
    exchange_time: int
    received_at: int

    def to_tick(self) -> Tick:
        """The trade as the Tick event published on the ticks stream."""
        return Tick(symbol=self.symbol, price=self.price, trade_id=self.trade_id, exchange_time=self.exchange_time,
                    received_at=self.received_at)


@dataclass(frozen=True)
class ControlReply:
    """The answer to one of our SUBSCRIBE/UNSUBSCRIBE/... requests."""

    id: Any
    result: Any
    error: dict[str, Any] | None


@dataclass(frozen=True)
class ServerShutdown:
    """Binance announced that this connection is about to close for maintenance."""


@dataclass(frozen=True)
class OtherEvent:
    """A well-formed event we do not use (ignored, but proof that the stream is alive)."""

    kind: str


Frame = Trade | ControlReply | ServerShutdown | OtherEvent


def parse_frame(raw: str | bytes, received_at: int) -> Frame:
    """Classify one frame (combined-wrapped or raw); raises MalformedFrame."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedFrame(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedFrame("not a JSON object")
    if "stream" in message:
        data = message.get("data")
        if message["stream"] == "!serverShutdown":
            return ServerShutdown()
        if not isinstance(data, dict):
            raise MalformedFrame("combined frame without an object in data")
        return _event(data, received_at)
    if "id" in message and ("result" in message or "error" in message):
        error = message.get("error")
        return ControlReply(message["id"], message.get("result"), error if isinstance(error, dict) else None)
    return _event(message, received_at)


def _event(data: dict[str, Any], received_at: int) -> Frame:
    kind = data.get("e")
    if kind == "trade":
        return _tick(data, data.get("t"), received_at)
    if kind == "aggTrade":
        # The last trade id keeps aggTrade ticks in the same id space as @trade ones.
        return _tick(data, data.get("l"), received_at)
    if kind == "serverShutdown":
        return ServerShutdown()
    if isinstance(kind, str):
        return OtherEvent(kind)
    raise MalformedFrame("event without a type")


def _tick(data: dict[str, Any], trade_id: Any, received_at: int) -> Trade:
    symbol, price_text, trade_time = data.get("s"), data.get("p"), data.get("T")
    # `type(...) is int` also refuses booleans.
    if type(trade_id) is not int or type(trade_time) is not int or trade_id < 0 or trade_time < 0:
        raise MalformedFrame("trade id or time is not a non-negative integer")
    if type(symbol) is not str or not 0 < len(symbol) <= 64 or not symbol.isprintable():
        raise MalformedFrame("trade without a printable symbol")
    if type(price_text) is not str:
        raise MalformedFrame("price is not a string")
    try:
        price = Decimal(price_text)
    except InvalidOperation:
        raise MalformedFrame(f"price {price_text!r} is not a decimal") from None
    if not price.is_finite() or price <= 0:
        raise MalformedFrame(f"price {price_text!r} is not a positive finite decimal")
    return Trade(symbol, price, trade_id, trade_time, received_at)


class RecentTrades:
    """Remembers the last `capacity` (symbol, trade id) pairs, to drop duplicates from overlapping connections."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._order: deque[tuple[str, int]] = deque()
        self._seen: set[tuple[str, int]] = set()

    def first_time(self, symbol: str, trade_id: int) -> bool:
        """True the first time a trade is seen within the window, False for a repeat."""
        key = (symbol, trade_id)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())
        return True

    def __len__(self) -> int:
        return len(self._order)
