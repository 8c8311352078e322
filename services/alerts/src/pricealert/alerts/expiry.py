"""The expiry sweeper: active alerts past their expires_at become expired and emit alert.expired."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from pricealert.alerts.service import AlertService

log = structlog.get_logger()


class ExpirySweeper:
    """Expires due alerts every interval; concurrent replicas are safe (conditional UPDATE)."""

    def __init__(self, service: AlertService, *, interval_s: float = 1.0, batch_size: int = 500) -> None:
        self.service = service
        self.interval_s = interval_s
        self.batch_size = batch_size

    async def sweep(self) -> int:
        """Expire everything due now; returns how many alerts expired."""
        total = 0
        while (count := await self.service.expire_due(limit=self.batch_size)) > 0:
            total += count
            if count < self.batch_size:
                break
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until `stop` is set."""
        delay = self.interval_s
        while not stop.is_set():
            try:
                await self.sweep()
                delay = self.interval_s
            except Exception as exc:  # the database is away: keep trying, expiry catches up
                log.warning("expiry.sweep.failed", error=f"{type(exc).__name__}: {exc}")
                delay = min(delay * 2, 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        log.info("expiry.sweeper.stopped")
