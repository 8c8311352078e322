"""`python -m pricealert.alerts worker`: the stream consumers, the outbox relay, the expiry sweeper, the channel resync.

One process of its own, apart from the API's (which serve HTTP only); replicas are safe: consumers share a
group, the relay lock orders the relays, and the sweep's conditional update skips what another expired.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from pricealert.alerts.channelsync import ChannelResync
from pricealert.alerts.expiry import ExpirySweeper
from pricealert.alerts.feedwriter import build_feed_consumers
from pricealert.alerts.handlers import SERVICE, build_consumers
from pricealert.alerts.maintenance import agree_on_shards, prepare
from pricealert.alerts.outbox import OutboxRelay
from pricealert.alerts.settings import AlertsSettings
from pricealert.alerts.state import build_state, close_state
from pricealert.common.health import keep_beating
from pricealert.common.runner import run_until_signalled

log = structlog.get_logger()

Loop = Callable[[asyncio.Event], Awaitable[None]]


async def supervise(name: str, loop: Loop, stop: asyncio.Event) -> None:
    """Run a background loop until `stop`, restarting it with backoff if it crashes."""
    delay = 0.5
    while not stop.is_set():
        try:
            await loop(stop)
        except Exception:
            log.exception("alerts.task.crashed", task=name, retry_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 10.0)


async def run(settings: AlertsSettings, stop: asyncio.Event, *, started: asyncio.Event | None = None) -> None:
    """Run the enabled loops until `stop`, then close every connection; `started` is set once connected."""
    state = build_state(settings)
    try:
        await prepare(state)
        await agree_on_shards(state, stop)
        if started is not None:
            started.set()
        loops: list[tuple[str, Loop]] = []
        if settings.relay_enabled:
            relay = OutboxRelay(
                state.store,
                state.redis,
                shards=settings.shards,
                poll_s=settings.relay_poll_s,
                batch_size=settings.relay_batch_size,
            )
            loops.append(("outbox_relay", relay.run))
        if settings.consumers_enabled:
            consumers = build_consumers(state.redis, state.service, settings)
            loops += [(f"consumer:{c.options.stream}", c.run) for c in consumers]
        else:  # the consumers beat for the worker; without them the health check still needs a heartbeat
            redis = state.redis
            loops.append(("heartbeat", lambda stop: keep_beating(redis, SERVICE, settings.consumer_name, stop)))
        if settings.feed_writer_enabled:
            loops += [(f"feed:{c.options.stream}", c.run) for c in build_feed_consumers(state.redis, settings)]
        if settings.expiry_enabled:
            loops.append(("expiry", ExpirySweeper(state.service, interval_s=settings.expiry_sweep_s).run))
        resync = ChannelResync(state.channels.store, state.redis, interval_s=settings.channel_resync_s)
        loops.append(("channel_resync", resync.run))
        log.info("alerts.worker.started", tasks=[name for name, _ in loops])
        await asyncio.gather(*(supervise(name, loop, stop) for name, loop in loops), stop.wait())
    finally:
        await close_state(state)
        log.info("alerts.worker.stopped")


def main(settings: AlertsSettings) -> None:
    """The worker process until SIGTERM/SIGINT."""
    asyncio.run(run_until_signalled(lambda stop: run(settings, stop)))
