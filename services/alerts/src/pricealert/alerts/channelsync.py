"""The worker's channel resync: every channel written to the notifier's registry again, at start and periodically.

Each API change publishes its channel after the commit; a crash (or Redis away) between the two would leave the
registry behind. The registry keeps the newest version only (put_channel), so writing every row again is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from pricealert.alerts.channelspec import publish_channel
from pricealert.alerts.channelstore import ChannelStore
from pricealert.common.events import utc_now
from pricealert.common.redisconn import RedisClient

log = structlog.get_logger()

# Deleted channels are written again this long after their deletion (a tombstone the notifier obeys).
TOMBSTONE_AGE = timedelta(days=2)


class ChannelResync:
    """Writes every channel (and recent tombstones) to the registry every `interval_s`."""

    def __init__(self, store: ChannelStore, redis: RedisClient, *, interval_s: float = 30.0) -> None:
        self.store = store
        self.redis = redis
        self.interval_s = interval_s

    async def resync_once(self) -> int:
        """Publish every channel once (a newer version in the registry stays); returns how many it wrote."""
        written = 0
        for channel in await self.store.for_resync(utc_now() - TOMBSTONE_AGE):
            written += await publish_channel(self.redis, channel)
        log.debug("channel.resync.done", written=written)
        return written

    async def run(self, stop: asyncio.Event) -> None:
        """Resync at once, then every interval, until `stop` (a failed round is retried at the next one)."""
        while not stop.is_set():
            try:
                await self.resync_once()
            except Exception as exc:  # Redis or the database away: the next round tries again
                log.warning("channel.resync.failed", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
