"""The symbols API's answers: catalog entries searched by name, with the current price ingest keeps (names.PRICES)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import structlog
from pydantic import BaseModel, Field

from pricealert.alerts.catalog import SymbolCatalog
from pricealert.common import names
from pricealert.common.events import CatalogSymbol
from pricealert.common.prices import CURRENT_PRICE_MAX_AGE_S, Price, PriceQuote
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient

log = structlog.get_logger()


class SymbolView(BaseModel):
    """A TRADING symbol: its price filter and its current price (null when none is at most 10 s old)."""

    symbol: str = Field(examples=["BTCUSDT"])
    min_price: Price = Field(description="The lowest price the exchange accepts (0: no bound).", examples=["0.01"])
    max_price: Price = Field(description="The highest price the exchange accepts (0: no bound).", examples=["1000000"])
    tick_size: Price = Field(description="Prices are multiples of it (0: any).", examples=["0.01"])
    price: Price | None = Field(
        description="The last known price, when it is at most 10 s old; otherwise null.", examples=["64818.28"]
    )
    price_at: datetime | None = Field(
        description="When that price held (the trade's exchange time, or when ingest read the exchange's ticker).",
        examples=["2026-12-06T14:50:43.123000Z"],
    )


class SymbolPage(BaseModel):
    """The symbols matching a search, best first."""

    items: list[SymbolView]


def search(names_sorted: list[str], query: str, limit: int) -> list[str]:
    """Names starting with `query` first, then those containing it, each by name (case-insensitive)."""
    wanted = query.upper()
    if not wanted:
        return names_sorted[:limit]
    starting = [n for n in names_sorted if n.startswith(wanted)]
    if len(starting) >= limit:
        return starting[:limit]
    containing = [n for n in names_sorted if wanted in n and not n.startswith(wanted)]
    return (starting + containing)[:limit]


async def current_quotes(redis: RedisClient, symbols: list[str]) -> dict[str, PriceQuote]:
    """The quotes of `symbols` at most CURRENT_PRICE_MAX_AGE_S old, in one HMGET; none while Redis is away."""
    if not symbols:
        return {}
    try:
        values = await redis.hmget(names.PRICES, symbols)
    except TRANSIENT_REDIS_ERRORS as exc:
        log.warning("symbols.prices_unavailable", error=str(exc))
        return {}
    now_ms = int(time.time() * 1000)
    quotes: dict[str, PriceQuote] = {}
    for symbol, value in zip(symbols, values, strict=True):
        quote = PriceQuote.unpack(value) if value is not None else None
        if quote is not None and quote.age_s(now_ms) <= CURRENT_PRICE_MAX_AGE_S:
            quotes[symbol] = quote
    return quotes


def view(entry: CatalogSymbol, quote: PriceQuote | None) -> SymbolView:
    """The view of one catalog entry and its current quote."""
    return SymbolView(
        symbol=entry.symbol,
        min_price=entry.min_price,
        max_price=entry.max_price,
        tick_size=entry.tick_size,
        price=quote.price if quote else None,
        price_at=datetime.fromtimestamp(quote.at_ms / 1000, UTC) if quote else None,
    )


async def symbol_page(catalog: SymbolCatalog, redis: RedisClient, query: str, limit: int) -> SymbolPage:
    """The page of GET /symbols."""
    names_sorted, by_name = await catalog.sorted_entries()
    entries = [by_name[n] for n in search(names_sorted, query, limit)]
    quotes = await current_quotes(redis, [e.symbol for e in entries])
    log.debug("symbols.listed", q=query, count=len(entries))
    return SymbolPage(items=[view(e, quotes.get(e.symbol)) for e in entries])


async def one_symbol(catalog: SymbolCatalog, redis: RedisClient, symbol: str) -> SymbolView:
    """The answer of GET /symbols/{symbol}; InvalidInput `unknown_symbol` (with close matches) if unknown."""
    entry = await catalog.lookup(symbol)
    quotes = await current_quotes(redis, [entry.symbol])
    return view(entry, quotes.get(entry.symbol))
