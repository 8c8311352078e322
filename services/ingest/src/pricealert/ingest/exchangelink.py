"""Whether the exchange answers: each ticker poll's outcome, kept in Redis for the API and logged once per change."""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import structlog

from pricealert.common import names
from pricealert.common.prices import EXCHANGE_LINK_TTL_S, ExchangeLink, LinkState
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.ingest.stats import Stats

log = structlog.get_logger()

HTTP_REASONS = {418: "IP banned", 429: "rate limited", 451: "restricted location"}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def describe_failure(exc: BaseException, url: str) -> str:
    """A short plain cause of a failed request to `url` (`cannot resolve api.binance.com (no internet?)`)."""
    chain = _chain(exc)
    host = urlsplit(url).hostname or url
    if any(isinstance(e, socket.gaierror) for e in chain) or "name or service not known" in str(exc).lower():
        return f"cannot resolve {host} (no internet?)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in str(exc).lower():
        return "connection refused"
    if any(isinstance(e, httpx.TimeoutException | TimeoutError) for e in chain):
        return "timed out"
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return f"TLS handshake failed: {next(e for e in chain if isinstance(e, ssl.SSLError))}"
    os_error = next((e for e in chain if isinstance(e, OSError) and e.strerror), None)
    if os_error is not None:
        return str(os_error.strerror).lower()
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def describe_status(status: int) -> str:
    """A short plain cause of an HTTP refusal (`HTTP 451 (restricted location)`)."""
    reason = HTTP_REASONS.get(status)
    return f"HTTP {status} ({reason})" if reason else f"HTTP {status}"


def unreachable_message(url: str, cause: str) -> str:
    """What the log says, once, when the exchange stops answering."""
    return (
        f"Binance ({url}) is unreachable from this machine: {cause}. Live prices and the symbol catalog need it; "
        "`make demo` runs offline on the fake exchange."
    )


class LinkReporter:
    """Keeps names.EXCHANGE_LINK current from each poll's outcome; logs each change of state once.

    While the link is down, `stats.exchange_unreachable_since` is set: the other per-attempt failures (catalog,
    connections) log at debug, the one error line having said why.
    """

    def __init__(self, redis: RedisClient, url: str, stats: Stats) -> None:
        self.redis = redis
        self.url = url
        self.stats = stats
        self.link = ExchangeLink(LinkState.UNKNOWN, url)

    async def connected(self) -> None:
        """A poll was answered."""
        if self.link.state is LinkState.UNREACHABLE:
            log.info("ingest.exchange.reachable", url=self.url, message=f"Binance ({self.url}) answers again.")
        await self._record(LinkState.CONNECTED, "")

    async def unreachable(self, cause: str) -> None:
        """A poll failed for `cause`."""
        if self.link.state is not LinkState.UNREACHABLE:
            log.error(
                "ingest.exchange.unreachable", url=self.url, error=cause, message=unreachable_message(self.url, cause)
            )
        else:
            log.debug("ingest.exchange.still_unreachable", url=self.url, error=cause)
        await self._record(LinkState.UNREACHABLE, cause)

    async def _record(self, state: LinkState, error: str) -> None:
        now = datetime.now(UTC)
        since = self.link.since if self.link.state is state and self.link.since else now
        self.link = ExchangeLink(state, self.url, error, since, now)
        self.stats.exchange_unreachable_since = since.timestamp() if state is LinkState.UNREACHABLE else None
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(names.EXCHANGE_LINK, mapping={k: v for k, v in self.link.to_fields().items()})
                pipe.expire(names.EXCHANGE_LINK, EXCHANGE_LINK_TTL_S)
                await pipe.execute()
        except TRANSIENT_REDIS_ERRORS as exc:
            log.warning("ingest.exchange.link_not_written", error=str(exc))
