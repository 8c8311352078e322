"""The feed writer: turns alert events, triggers and notification results into each user's live feed (feed.py).

Consumes (group feed), of every shard k: pricealert:{s<k>}:alert-events, :triggers and :notification-results,
one consumer per stream. Produces: names.feed_stream(user_id), one FeedEvent per thing that happened, trimmed to
about names.FEED_MAXLEN entries and expiring 7 days after its last entry. Entries are acked after the batch's
XADDs: a crash in between writes them again (a client drops the duplicate by its type and source_id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import structlog

from pricealert.alerts.handlers import SERVICE
from pricealert.alerts.metrics import FEED_EVENTS
from pricealert.alerts.models import AlertStatus
from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, PermanentError, Received, StreamConsumer
from pricealert.common.events import (
    AlertEvent,
    AlertEventType,
    DeliveryStatus,
    Frequency,
    NotificationResult,
    Trigger,
)
from pricealert.common.feed import FeedEvent, FeedEventType
from pricealert.common.publisher import maxlen_for
from pricealert.common.redisconn import RedisClient

log = structlog.get_logger()

FEED_TTL_S = 7 * 24 * 3600  # a feed nobody wrote to for a week is gone (a quiet user's history is not kept forever)

_ALERT_TYPES = {
    AlertEventType.CREATED: FeedEventType.CREATED,
    AlertEventType.UPDATED: FeedEventType.UPDATED,
    AlertEventType.DELETED: FeedEventType.DELETED,
    AlertEventType.EXPIRED: FeedEventType.EXPIRED,
}
_DELIVERY_TYPES = {
    DeliveryStatus.SENT: FeedEventType.DELIVERED,
    DeliveryStatus.FAILED: FeedEventType.FAILED,
    DeliveryStatus.RETRYING: FeedEventType.RETRYING,
}


def _alert_status(event: AlertEvent) -> AlertStatus:
    if event.type is AlertEventType.UPDATED:
        return AlertStatus.PAUSED if event.paused else AlertStatus.ACTIVE
    if event.type is AlertEventType.DELETED:
        return AlertStatus.DELETED
    if event.type is AlertEventType.EXPIRED:
        return AlertStatus.EXPIRED
    return AlertStatus.ACTIVE


def from_alert_event(event: AlertEvent) -> FeedEvent:
    """The feed entry of an alert's lifecycle change."""
    return FeedEvent(
        type=_ALERT_TYPES[event.type],
        source_id=event.event_id,
        alert_id=event.alert_id,
        user_id=event.user_id,
        symbol=event.symbol,
        status=_alert_status(event),
        occurred_at=event.occurred_at,
    )


def from_trigger(trigger: Trigger) -> list[FeedEvent]:
    """alert.fired, and alert.paused after it when this firing reached the hourly limit."""
    if trigger.paused:
        status = AlertStatus.PAUSED
    elif trigger.frequency is Frequency.ONCE:
        status = AlertStatus.TRIGGERED
    else:
        status = AlertStatus.ACTIVE
    fired = FeedEvent(
        type=FeedEventType.FIRED,
        source_id=trigger.trigger_id,
        alert_id=trigger.alert_id,
        user_id=trigger.user_id,
        symbol=trigger.symbol,
        status=status,
        trigger_id=trigger.trigger_id,
        firing=trigger.firing,
        price=trigger.price,
        occurred_at=datetime.fromtimestamp(trigger.fired_at / 1000, UTC),
    )
    if not trigger.paused:
        return [fired]
    return [fired, fired.model_copy(update={"type": FeedEventType.PAUSED})]


def from_result(result: NotificationResult) -> FeedEvent | None:
    """The feed entry of one delivery attempt's outcome; None for a result that names no user (written before
    results carried one)."""
    if result.user_id is None:
        return None
    return FeedEvent(
        type=_DELIVERY_TYPES[result.status],
        source_id=f"{result.trigger_id}@{result.channel_id}#{result.attempts}",
        alert_id=result.alert_id,
        user_id=result.user_id,
        status=result.status,
        trigger_id=result.trigger_id,
        channel_id=result.channel_id,
        attempt=result.attempts,
        error=result.error,
        occurred_at=result.occurred_at,
    )


async def append(redis: RedisClient, events: Iterable[FeedEvent]) -> int:
    """XADD each event to its user's feed and refresh each feed's expiry, in one pipeline; returns how many."""
    # Not a transaction: each user's feed is its own hash slot, and on a cluster the pipeline splits by node.
    pipe = redis.pipeline(transaction=False)
    users: set[str] = set()
    written: Counter[str] = Counter()
    count = 0
    for event in events:
        key = names.feed_stream(event.user_id)
        pipe.xadd(key, event.to_fields(), maxlen=maxlen_for(key), approximate=True)  # type: ignore[arg-type]  # redis-py: invariant value type
        users.add(event.user_id)
        written[event.type.value] += 1
        count += 1
    for user_id in users:
        pipe.expire(names.feed_stream(user_id), FEED_TTL_S)
    if count:
        await pipe.execute()
        for kind, n in written.items():
            FEED_EVENTS.labels(kind).inc(n)
    return count


class FeedWriter:
    """The handlers of the three source streams, writing to the users' feeds."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._warned_anonymous = False

    async def alert_events(self, messages: Sequence[Received[AlertEvent]]) -> None:
        """Feed entries of a batch of alert lifecycle changes."""
        await append(self.redis, (from_alert_event(m.event) for m in messages))

    async def triggers(self, messages: Sequence[Received[Trigger]]) -> None:
        """Feed entries of a batch of firings."""
        try:
            events = [event for m in messages for event in from_trigger(m.event)]
        except (OverflowError, OSError, ValueError) as exc:  # a firing time no datetime can hold: never will
            raise PermanentError(str(exc)) from exc
        await append(self.redis, events)

    async def results(self, messages: Sequence[Received[NotificationResult]]) -> None:
        """Feed entries of a batch of delivery outcomes (those naming no user skipped, logged once)."""
        events = [from_result(m.event) for m in messages]
        if None in events and not self._warned_anonymous:
            self._warned_anonymous = True
            log.warning("feed.result.no_user", hint="results written before they carried user_id are not fed")
        await append(self.redis, (e for e in events if e is not None))


def build_feed_consumers(redis: RedisClient, settings: AlertsSettings) -> list[StreamConsumer]:
    """The feed writer's consumers: of every shard, its alert events, triggers and notification results."""

    def options(stream: str) -> ConsumerOptions:
        return ConsumerOptions(
            stream=stream,
            group=names.GROUP_FEED,
            consumer=settings.consumer_name,
            service=SERVICE,
            reclaim_idle_ms=settings.consumer_reclaim_idle_ms,
            block_ms=settings.consumer_block_ms,
        )

    writer = FeedWriter(redis)
    consumers: list[StreamConsumer] = []
    for shard in range(settings.shards):
        consumers += [
            StreamConsumer(redis, options(AlertEvent.stream_of(shard)), writer.alert_events, event=AlertEvent),
            StreamConsumer(redis, options(Trigger.stream_of(shard)), writer.triggers, event=Trigger),
            StreamConsumer(
                redis, options(NotificationResult.stream_of(shard)), writer.results, event=NotificationResult
            ),
        ]
    return consumers
