"""Jittered exponential backoff, Retry-After parsing, the connection-attempt budget and stoppable sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections import deque
from datetime import UTC, datetime

import structlog

log = structlog.get_logger()


class Backoff:
    """Delays for retries: the first one short, then doubling with jitter up to a cap."""

    def __init__(self, first_s: float, max_s: float, *, factor: float = 2.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.factor = factor
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next retry."""
        if self.attempt == 0:
            delay = random.uniform(0, self.first_s)
        else:
            base = min(self.max_s, max(self.first_s, 0.5) * self.factor**self.attempt)
            delay = random.uniform(base / 2, base)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start over after a success."""
        self.attempt = 0


def retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class AttemptLimiter:
    """At most `limit` connection attempts per `window_s` (Binance: 300 per 5 minutes per IP)."""

    def __init__(self, limit: int, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._attempts: deque[float] = deque()

    async def acquire(self) -> None:
        """Wait until one more attempt fits in the window, then count it."""
        while True:
            now = time.monotonic()
            while self._attempts and now - self._attempts[0] >= self.window_s:
                self._attempts.popleft()
            if len(self._attempts) < self.limit:
                self._attempts.append(now)
                return
            wait = self.window_s - (now - self._attempts[0])
            log.warning("ingest.connect.budget_exhausted", wait_s=round(wait, 1), limit=self.limit)
            await asyncio.sleep(wait)


async def sleep_or_stop(stop: asyncio.Event, delay: float) -> bool:
    """Sleep `delay` seconds unless `stop` is set first; returns whether it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
    return stop.is_set()
