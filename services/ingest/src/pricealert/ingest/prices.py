"""Current prices for the API (names.PRICES): the exchange's all-symbols ticker every few seconds, and the last
trade of each subscribed symbol about every second; each ticker poll also tells whether the exchange answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import structlog

from pricealert.common import names
from pricealert.common.prices import EXCHANGE_LINK_TTL_S, PriceQuote
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.ingest.backoff import Backoff, retry_after_s, sleep_or_stop
from pricealert.ingest.exchangelink import LinkReporter, describe_failure, describe_status
from pricealert.ingest.frames import PriceFilters, Trade
from pricealert.ingest.settings import IngestSettings
from pricealert.ingest.stats import Stats

log = structlog.get_logger()

TICKER_PRICE = "/api/v3/ticker/price"  # weight 4 for every symbol at once
TRADE_FLUSH_S = 1.0
# A failing poll backs off, but re-checks before the link's state expires in Redis.
FAILURE_MAX_DELAY_S = EXCHANGE_LINK_TTL_S / 2


class TickerUnavailable(Exception):
    """The ticker poll got no usable answer: `cause` in plain words, `retry_after_s` from the exchange."""

    def __init__(self, cause: str, retry_after_s: float | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after_s = retry_after_s


def parse_ticker(body: Any, filters: PriceFilters | None = None) -> dict[str, Decimal]:
    """Symbol -> price of a ticker/price answer; only symbols `filters` knows when it knows any (TRADING ones)."""
    if not isinstance(body, list):
        raise TickerUnavailable("the ticker answer is not a list")
    known = filters if filters is not None and len(filters) else None
    prices: dict[str, Decimal] = {}
    for row in body:
        if not isinstance(row, dict) or type(row.get("symbol")) is not str or type(row.get("price")) is not str:
            continue
        if known is not None and row["symbol"] not in known:
            continue
        try:
            price = Decimal(row["price"])
        except InvalidOperation:
            continue
        if price.is_finite() and price > 0:
            prices[row["symbol"]] = price
    return prices


class PricePublisher:
    """Polls the ticker every `price_snapshot_s` and flushes the latest trades every second, into names.PRICES."""

    def __init__(
        self,
        settings: IngestSettings,
        redis: RedisClient,
        stats: Stats,
        *,
        take_trades: Callable[[], dict[str, Trade]],
        filters: PriceFilters | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.take_trades = take_trades
        self.filters = filters
        self.client = client
        self.url = settings.binance_rest_url.rstrip("/") + TICKER_PRICE
        self.link = LinkReporter(redis, settings.binance_rest_url, stats)
        self.snapshots = 0

    async def poll(self, client: httpx.AsyncClient) -> dict[str, Decimal]:
        """The TRADING symbols' prices; raises TickerUnavailable."""
        try:
            response = await client.get(self.url, params={"symbolStatus": "TRADING"})
            if response.status_code == 400:
                # Servers that don't know symbolStatus: every symbol, the catalog's TRADING ones kept.
                response = await client.get(self.url)
        except httpx.HTTPError as exc:
            raise TickerUnavailable(describe_failure(exc, self.url)) from exc
        if response.status_code != 200:
            wait = retry_after_s(response.headers.get("Retry-After"))
            raise TickerUnavailable(describe_status(response.status_code), wait)
        try:
            body = response.json()
        except ValueError as exc:
            raise TickerUnavailable("the ticker answer is not JSON") from exc
        return parse_ticker(body, self.filters)

    async def snapshot(self, client: httpx.AsyncClient) -> int:
        """Poll once, record the link's state, write the prices; returns how many were written."""
        prices = await self.poll(client)
        now_ms = int(time.time() * 1000)
        await self.write({symbol: PriceQuote(price, now_ms) for symbol, price in prices.items()})
        self.snapshots += 1
        return len(prices)

    async def flush_trades(self) -> int:
        """Write the last trade of each symbol traded since the previous flush; returns how many."""
        trades = self.take_trades()
        if trades:
            await self.write({s: PriceQuote(t.price, t.exchange_time) for s, t in trades.items()})
        return len(trades)

    async def write(self, quotes: Mapping[str, PriceQuote]) -> None:
        """One HSET of `quotes` into names.PRICES."""
        if quotes:
            await self.redis.hset(names.PRICES, mapping={s: q.pack() for s, q in quotes.items()})

    async def run(self, stop: asyncio.Event, *, after: asyncio.Event | None = None) -> None:
        """Poll and flush until `stop` is set; the first poll waits for `after` (at most one interval)."""
        client = self.client or httpx.AsyncClient(timeout=10.0, trust_env=False)
        try:
            if after is not None:
                waits = {asyncio.ensure_future(after.wait()), asyncio.ensure_future(stop.wait())}
                await asyncio.wait(waits, timeout=self.settings.price_snapshot_s, return_when=asyncio.FIRST_COMPLETED)
                for task in waits:
                    task.cancel()
            await asyncio.gather(self._poll_loop(stop, client), self._flush_loop(stop))
        finally:
            if self.client is None:
                await client.aclose()

    async def _poll_loop(self, stop: asyncio.Event, client: httpx.AsyncClient) -> None:
        interval = self.settings.price_snapshot_s
        backoff = Backoff(interval, FAILURE_MAX_DELAY_S)
        while not stop.is_set():
            delay = interval
            try:
                await self.snapshot(client)
                backoff.reset()
                await self.link.connected()
            except TickerUnavailable as exc:
                delay = max(interval, backoff.next_delay(), exc.retry_after_s or 0.0)
                await self.link.unreachable(exc.cause)
            except TRANSIENT_REDIS_ERRORS as exc:
                log.warning("ingest.prices.not_written", error=str(exc))
            if await sleep_or_stop(stop, delay):
                return

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not await sleep_or_stop(stop, TRADE_FLUSH_S):
            try:
                await self.flush_trades()
            except TRANSIENT_REDIS_ERRORS as exc:
                log.warning("ingest.prices.not_written", error=str(exc))
