"""The symbol catalog, cached from the newest entry of the symbol-catalog stream."""

from __future__ import annotations

import asyncio
import difflib
import time

import structlog

from pricealert.common import names
from pricealert.common.errors import InvalidInput, ServiceUnavailable
from pricealert.common.events import CatalogSnapshot, CatalogSymbol, MalformedEvent
from pricealert.common.prices import ExchangeLink, LinkState
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient

log = structlog.get_logger()


async def read_exchange_link(redis: RedisClient) -> ExchangeLink:
    """The exchange link as ingest last saw it (names.EXCHANGE_LINK); UNKNOWN when absent or unreadable."""
    try:
        fields = await redis.hgetall(names.EXCHANGE_LINK)
    except TRANSIENT_REDIS_ERRORS as exc:
        log.warning("exchange_link.read_failed", error=str(exc))
        return ExchangeLink(LinkState.UNKNOWN)
    return ExchangeLink.from_fields({_text(k): _text(v) for k, v in (fields or {}).items()})


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class SymbolCatalog:
    """Symbols by name; re-read when stale, and when a symbol is unknown (at most every min interval)."""

    def __init__(self, redis: RedisClient, *, refresh_s: float = 60.0, min_refresh_s: float = 2.0) -> None:
        self.redis = redis
        self.refresh_s = refresh_s
        self.min_refresh_s = min_refresh_s
        self._entries: dict[str, CatalogSymbol] | None = None
        self._refreshed_at = float("-inf")
        self._lock = asyncio.Lock()
        self._sorted: tuple[dict[str, CatalogSymbol], list[str]] | None = None

    async def refresh(self) -> None:
        """Read the newest snapshot; keeps the cached one when Redis fails or the entry is malformed."""
        async with self._lock:
            self._refreshed_at = time.monotonic()
            try:
                reply = await self.redis.xrevrange(names.SYMBOL_CATALOG, count=1)
            except TRANSIENT_REDIS_ERRORS as exc:
                log.warning("catalog.refresh.failed", error=str(exc))
                return
            if not reply:
                return
            entry_id, fields = reply[0]
            try:
                entries = CatalogSnapshot.from_fields(fields or {}).entries()
            except (MalformedEvent, ValueError, TypeError, IndexError) as exc:
                log.error("catalog.malformed", entry_id=entry_id, error=str(exc))
                return
            self._entries = {s.upper(): v for s, v in entries.items()}
            log.debug("catalog.refreshed", symbols=len(entries))

    async def _ensure(self, *, unknown: bool = False) -> dict[str, CatalogSymbol]:
        age = time.monotonic() - self._refreshed_at
        if self._entries is None or age >= self.refresh_s or (unknown and age >= self.min_refresh_s):
            await self.refresh()
        if self._entries is None:
            link = await read_exchange_link(self.redis)
            if link.state is LinkState.UNREACHABLE:
                message = (
                    "The exchange is unreachable from this server, so there is no symbol catalog yet: "
                    f"{link.error}. `make demo` runs offline on a simulated market."
                )
            else:
                message = "The symbol catalog is not available yet; try again shortly."
            raise ServiceUnavailable(
                message,
                code="catalog_unavailable",
                details={"exchange": link.public()},
                headers={"Retry-After": "5"},
            )
        return self._entries

    async def sorted_entries(self) -> tuple[list[str], dict[str, CatalogSymbol]]:
        """Every symbol's name (upper case), sorted, and the entries by name; ServiceUnavailable while there is no
        catalog. The sorted names are kept until the next snapshot."""
        entries = await self._ensure()
        if self._sorted is None or self._sorted[0] is not entries:
            self._sorted = (entries, sorted(entries))
        return self._sorted[1], entries

    async def lookup(self, symbol: str) -> CatalogSymbol:
        """The catalog entry of `symbol` (case-insensitive); InvalidInput with close matches if unknown."""
        key = symbol.strip().upper()
        entries = await self._ensure()
        found = entries.get(key)
        if found is None:
            entries = await self._ensure(unknown=True)
            found = entries.get(key)
        if found is None:
            matches = difflib.get_close_matches(key, entries.keys(), n=5, cutoff=0.6) if len(key) <= 40 else []
            raise InvalidInput(
                f"Unknown symbol {symbol!r}.",
                code="unknown_symbol",
                details={"symbol": symbol, "close_matches": matches},
            )
        return found

    @property
    def loaded(self) -> bool:
        """Whether a catalog has been read at least once."""
        return self._entries is not None
