"""Places for requests in flight: a few per destination host, more in all; a busy host fails fast, never queues."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pricealert.notifier.sender import SendFailed

HOST_WAIT_S = 0.5  # how long a delivery waits for one of its host's places before giving up for now


class HostSlots:
    """At most `per_host` requests in flight to one host, and `total` overall."""

    def __init__(self, per_host: int, total: int) -> None:
        self.per_host = per_host
        self._total = asyncio.Semaphore(total)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}  # deliveries holding or awaiting a host's semaphore (dropped at 0)

    @asynccontextmanager
    async def slot(self, host: str, deadline: float) -> AsyncIterator[None]:
        """A place for one request to `host`; SendFailed (transient) if its places stay busy for HOST_WAIT_S, or
        if no place at all frees up before `deadline` (the event loop's time)."""
        sem = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        self._users[host] = self._users.get(host, 0) + 1
        try:
            try:
                async with asyncio.timeout(HOST_WAIT_S):
                    await sem.acquire()
            except TimeoutError:
                raise SendFailed(
                    f"destination busy: {self.per_host} requests to {host} already in flight", permanent=False
                ) from None
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._total.acquire()
                except TimeoutError:
                    raise SendFailed("all places busy until the deadline", permanent=False) from None
                try:
                    yield
                finally:
                    self._total.release()
            finally:
                sem.release()
        finally:
            self._users[host] -= 1
            if not self._users[host]:
                del self._users[host], self._hosts[host]
