"""The notification-results streams: one NotificationResult per settled trigger, on its shard's stream, written in
the caller's MULTI."""

from __future__ import annotations

from pricealert.common.events import DeliveryStatus, NotificationResult, Trigger, utc_now
from pricealert.common.publisher import append
from pricealert.common.redisconn import RedisPipeline


def add_result(
    pipe: RedisPipeline, shard: int, trigger: Trigger, status: DeliveryStatus, error: str | None, attempts: int
) -> NotificationResult:
    """Add to `pipe`: append `trigger`'s result to `shard`'s notification-results stream; returns the result."""
    result = NotificationResult(
        trigger_id=trigger.trigger_id,
        alert_id=trigger.alert_id,
        status=status,
        attempts=attempts,
        error=error,
        occurred_at=utc_now(),
    )
    append(pipe, NotificationResult.stream_of(shard), result)
    return result
