"""Parsing Binance WebSocket frames into ticks, control replies and shutdown notices; trade dedupe."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from pricealert.common.events import MAX_PRICE_FRACTION_DIGITS, MAX_PRICE_INTEGER_DIGITS, CatalogSymbol, Tick

# A price as the exchange writes it: plain digits, at most 20 before the point and 18 after (what the
# evaluator accepts in a tick). No sign, no exponent: "1e7000000" would be a 7 MB tick once written out.
MAX_PRICE_CHARS = 40
MAX_INTEGER_DIGITS = MAX_PRICE_INTEGER_DIGITS
MAX_FRACTION_DIGITS = MAX_PRICE_FRACTION_DIGITS
_PLAIN_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
# Why a trade was rejected: the label values of the rejected-trades counter.
REJECT_REASONS = ("not_decimal", "too_long", "not_positive", "below_min_price", "above_max_price")


class MalformedFrame(ValueError):
    """A frame that is neither a well-formed trade, a control reply nor a known event."""


class RejectedTrade(MalformedFrame):
    """A trade whose price cannot be true: not a plain positive decimal of sane size, or outside its filter."""

    def __init__(self, reason: str, symbol: str, price: Any) -> None:
        shown = repr(
            price if not isinstance(price, str) or len(price) <= MAX_PRICE_CHARS else price[:MAX_PRICE_CHARS] + "..."
        )
        super().__init__(f"{symbol} trade rejected ({reason}): price {shown}")
        self.reason = reason
        self.symbol = symbol
        self.price = shown


class PriceFilters:
    """Each symbol's PRICE_FILTER bounds from the newest catalog ingest fetched (none known: no bound)."""

    def __init__(self) -> None:
        self._bounds: dict[str, tuple[Decimal | None, Decimal | None]] = {}

    def update(self, symbols: Iterable[CatalogSymbol]) -> None:
        """Take the bounds of a freshly fetched catalog (a bound of 0 is none, as on Binance)."""
        self._bounds = {s.symbol: (s.min_price or None, s.max_price or None) for s in symbols}

    def __len__(self) -> int:
        return len(self._bounds)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._bounds

    def violation(self, symbol: str, price: Decimal) -> str | None:
        """The reason `price` is outside `symbol`'s filter, or None (also when the symbol is not known)."""
        bounds = self._bounds.get(symbol)
        if bounds is None:
            return None
        low, high = bounds
        if low is not None and price < low:
            return "below_min_price"
        if high is not None and price > high:
            return "above_max_price"
        return None


class Trade(NamedTuple):
    """One trade as read from the exchange: a Tick's fields in Tick.FIELDS order, without pydantic's hot-path cost."""

    symbol: str
    price: Decimal
    trade_id: int
    exchange_time: int
    received_at: int

    def to_tick(self) -> Tick:
        """The trade as the Tick event published on the ticks stream."""
        return Tick(**self._asdict())


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


def parse_frame(raw: str | bytes, received_at: int, filters: PriceFilters | None = None) -> Frame:
    """Classify one frame (combined-wrapped or raw); raises MalformedFrame (RejectedTrade for a bad price)."""
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
        return _event(data, received_at, filters)
    if "id" in message and ("result" in message or "error" in message):
        error = message.get("error")
        return ControlReply(message["id"], message.get("result"), error if isinstance(error, dict) else None)
    return _event(message, received_at, filters)


def _event(data: dict[str, Any], received_at: int, filters: PriceFilters | None) -> Frame:
    kind = data.get("e")
    if kind == "trade":
        return _tick(data, data.get("t"), received_at, filters)
    if kind == "aggTrade":
        # The last trade id keeps aggTrade ticks in the same id space as @trade ones.
        return _tick(data, data.get("l"), received_at, filters)
    if kind == "serverShutdown":
        return ServerShutdown()
    if isinstance(kind, str):
        return OtherEvent(kind)
    raise MalformedFrame("event without a type")


def _tick(data: dict[str, Any], trade_id: Any, received_at: int, filters: PriceFilters | None) -> Trade:
    symbol, price_text, trade_time = data.get("s"), data.get("p"), data.get("T")
    # `type(...) is int` also refuses booleans.
    if type(trade_id) is not int or type(trade_time) is not int or trade_id < 0 or trade_time < 0:
        raise MalformedFrame("trade id or time is not a non-negative integer")
    if type(symbol) is not str or not 0 < len(symbol) <= 64 or not symbol.isprintable():
        raise MalformedFrame("trade without a printable symbol")
    price = _price(symbol, price_text)
    violation = filters.violation(symbol, price) if filters else None
    if violation is not None:
        raise RejectedTrade(violation, symbol, price_text)
    return Trade(symbol, price, trade_id, trade_time, received_at)


def _price(symbol: str, text: Any) -> Decimal:
    """The trade's price if it is a plain positive decimal of sane size; raises RejectedTrade."""
    if type(text) is not str:
        raise RejectedTrade("not_decimal", symbol, text)
    if len(text) > MAX_PRICE_CHARS:
        raise RejectedTrade("too_long", symbol, text)
    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None:
        raise RejectedTrade("not_decimal", symbol, text)
    whole, fraction = match.group(1), match.group(2) or ""
    if len(whole) > MAX_INTEGER_DIGITS or len(fraction) > MAX_FRACTION_DIGITS:
        raise RejectedTrade("too_long", symbol, text)
    price = Decimal(text)
    if not price:
        raise RejectedTrade("not_positive", symbol, text)
    return price


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
