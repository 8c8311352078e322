"""The alerts service's stream handlers, run by its worker process (worker.py).

Consumes (group alerts), of every shard k: pricealert:{s<k>}:triggers (Trigger: the alert fired) and
pricealert:{s<k>}:notification-results (NotificationResult: one attempt to deliver it on one channel), one
consumer per stream (on a cluster one XREADGROUP names one stream). Produces: pricealert:{s<k>}:alert-events
(AlertEvent) of the alert's symbol's shard, through the outbox (outbox.py) rather than from here: every alert
change stages its event in the change's transaction, and the worker's relay appends it to the stream. Writes
names.CHANNEL_REGISTRY: a channel a webhook's 410 disabled, after its transaction. While the database is away a
batch waits in hand (RetryLater) instead of spending its deliveries: an outage dead-letters no firing.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from redis.exceptions import RedisError

from pricealert.alerts.channelspec import publish_channel
from pricealert.alerts.service import AlertService
from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, PermanentError, Received, RetryLater, StreamConsumer
from pricealert.common.errors import database_away
from pricealert.common.events import NotificationResult, Trigger
from pricealert.common.redisconn import RedisClient

SERVICE = "alerts"

log = structlog.get_logger()


class TriggerHandler:
    """Stores each firing and counts it on its alert (a once alert becomes triggered, a limit pauses it)."""

    def __init__(self, service: AlertService) -> None:
        self.service = service

    async def __call__(self, messages: Sequence[Received[Trigger]]) -> None:
        """Handle one batch of trigger entries in one transaction."""
        try:
            await self.service.record_triggers([m.event for m in messages])
        except Exception as exc:
            if database_away(exc):
                raise RetryLater(f"database away: {type(exc).__name__}") from exc
            if isinstance(exc, OverflowError | OSError | ValueError):  # timestamps no datetime can hold
                raise PermanentError(str(exc)) from exc
            raise


class ResultHandler:
    """Logs each delivery attempt and updates its firing's (and its alert's) delivery; publishes disabled channels."""

    def __init__(self, service: AlertService, redis: RedisClient) -> None:
        self.service = service
        self.redis = redis

    async def __call__(self, messages: Sequence[Received[NotificationResult]]) -> None:
        """Handle one batch of notification results in one transaction, then publish the channels it disabled."""
        try:
            disabled = await self.service.record_results([m.event for m in messages])
        except Exception as exc:
            if database_away(exc):
                raise RetryLater(f"database away: {type(exc).__name__}") from exc
            raise
        for channel in disabled:
            try:
                await publish_channel(self.redis, channel)
            # The row is committed and its result will not come again: a retry would not publish it either. The
            # registry's periodic resync from the rows catches up.
            except (RedisError, OSError) as exc:
                log.warning("channel.publish_failed", channel_id=channel.id, error=f"{type(exc).__name__}: {exc}")


def build_consumers(redis: RedisClient, service: AlertService, settings: AlertsSettings) -> list[StreamConsumer]:
    """The consumers the worker process runs: of every shard, its triggers and its notification results."""

    def options(stream: str) -> ConsumerOptions:
        return ConsumerOptions(
            stream=stream,
            group=names.GROUP_ALERTS,
            consumer=settings.consumer_name,
            service=SERVICE,
            reclaim_idle_ms=settings.consumer_reclaim_idle_ms,
            block_ms=settings.consumer_block_ms,
        )

    triggers, results = TriggerHandler(service), ResultHandler(service, redis)
    consumers: list[StreamConsumer] = []
    for shard in range(settings.shards):
        consumers.append(StreamConsumer(redis, options(Trigger.stream_of(shard)), triggers, event=Trigger))
        consumers.append(
            StreamConsumer(redis, options(NotificationResult.stream_of(shard)), results, event=NotificationResult)
        )
    return consumers
