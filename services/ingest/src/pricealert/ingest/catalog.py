"""The symbol catalog: TRADING symbols with their PRICE_FILTER, fetched over REST and published whole."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import structlog

from pricealert.common import names
from pricealert.common.events import CatalogSnapshot, CatalogSymbol, utc_now
from pricealert.common.publisher import publish
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.ingest.backoff import Backoff, retry_after_s
from pricealert.ingest.frames import PriceFilters
from pricealert.ingest.settings import IngestSettings
from pricealert.ingest.stats import Stats

log = structlog.get_logger()

EXCHANGE_INFO = "/api/v3/exchangeInfo"


class CatalogUnavailable(Exception):
    """The exchange did not give us a usable exchangeInfo; `retry_after_s` says when to come back."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def parse_exchange_info(body: Any) -> list[CatalogSymbol]:
    """TRADING symbols of an exchangeInfo answer, with their PRICE_FILTER (a missing filter means no bound)."""
    if not isinstance(body, dict) or not isinstance(body.get("symbols"), list):
        raise CatalogUnavailable("exchangeInfo answer has no symbols list")
    out: list[CatalogSymbol] = []
    for entry in body["symbols"]:
        if not isinstance(entry, dict) or entry.get("status") != "TRADING" or not isinstance(entry.get("symbol"), str):
            continue
        price_filter = next(
            (f for f in entry.get("filters") or [] if isinstance(f, dict) and f.get("filterType") == "PRICE_FILTER"), {}
        )
        try:
            out.append(
                CatalogSymbol(
                    symbol=entry["symbol"],
                    min_price=Decimal(str(price_filter.get("minPrice", "0"))),
                    max_price=Decimal(str(price_filter.get("maxPrice", "0"))),
                    tick_size=Decimal(str(price_filter.get("tickSize", "0"))),
                )
            )
        except (InvalidOperation, ValueError):
            log.warning("ingest.catalog.symbol_skipped", symbol=entry.get("symbol"))
    return sorted(out, key=lambda s: s.symbol)


class CatalogPublisher:
    """Fetches exchangeInfo at start and every `catalog_refresh_s`, publishing a snapshot each time."""

    def __init__(
        self,
        settings: IngestSettings,
        redis: RedisClient,
        client: httpx.AsyncClient | None = None,
        *,
        filters: PriceFilters | None = None,
        stats: Stats | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.client = client
        self.filters = filters
        self.stats = stats
        self.published = 0
        self.tried = asyncio.Event()  # set once the first fetch succeeded or failed

    async def fetch(self, client: httpx.AsyncClient) -> list[CatalogSymbol]:
        """Fetch and parse the TRADING symbols; raises CatalogUnavailable."""
        url = self.settings.binance_rest_url.rstrip("/") + EXCHANGE_INFO
        try:
            response = await client.get(url, params={"symbolStatus": "TRADING"})
            if response.status_code == 400:
                # Older Binance-protocol servers don't know symbolStatus; filter locally instead.
                response = await client.get(url)
        except httpx.HTTPError as exc:
            raise CatalogUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            wait = retry_after_s(response.headers.get("Retry-After"))
            if response.status_code == 418:
                log.error("ingest.catalog.ip_banned", retry_after_s=wait)
            raise CatalogUnavailable(f"HTTP {response.status_code}", wait)
        try:
            return parse_exchange_info(response.json())
        except ValueError as exc:
            raise CatalogUnavailable(f"exchangeInfo is not JSON: {exc}") from exc

    async def refresh(self, client: httpx.AsyncClient) -> CatalogSnapshot:
        """Fetch once and publish the snapshot."""
        symbols = await self.fetch(client)
        if self.filters is not None:  # the frame parser checks every trade's price against these from now on
            self.filters.update(symbols)
        snapshot = CatalogSnapshot.build(symbols, utc_now())
        await publish(self.redis, names.SYMBOL_CATALOG, snapshot)
        self.published += 1
        log.info("ingest.catalog.published", symbols=len(symbols))
        return snapshot

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh until `stop` is set, retrying failures with backoff (and Retry-After)."""
        client = self.client or httpx.AsyncClient(timeout=10.0, trust_env=False)
        backoff = Backoff(1.0, self.settings.catalog_retry_max_s)
        try:
            while not stop.is_set():
                try:
                    await self.refresh(client)
                    backoff.reset()
                    delay = self.settings.catalog_refresh_s
                except (CatalogUnavailable, *TRANSIENT_REDIS_ERRORS) as exc:
                    delay = backoff.next_delay()
                    wait = exc.retry_after_s if isinstance(exc, CatalogUnavailable) else None
                    if wait is not None:
                        delay = max(delay, wait)
                    # While the exchange is known unreachable, its one error line said so (exchangelink.py).
                    quiet = self.stats is not None and self.stats.exchange_unreachable_since is not None
                    (log.debug if quiet else log.warning)(
                        "ingest.catalog.failed", error=str(exc), retry_in_s=round(delay, 2)
                    )
                self.tried.set()
                waiter = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter}, timeout=delay)
                waiter.cancel()
        finally:
            if self.client is None:
                await client.aclose()
