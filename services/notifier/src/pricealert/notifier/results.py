"""The notification-results stream: one NotificationResult per settled trigger, written in the caller's MULTI."""

from __future__ import annotations

from redis.asyncio.client import Pipeline

from pricealert.common import names
from pricealert.common.events import DeliveryStatus, NotificationResult, Trigger, utc_now
from pricealert.common.publisher import append


def add_result(
    pipe: Pipeline, trigger: Trigger, status: DeliveryStatus, error: str | None, attempts: int
) -> NotificationResult:
    """Add to `pipe`: append `trigger`'s result to pricealert:notification-results; returns the result."""
    result = NotificationResult(
        trigger_id=trigger.trigger_id,
        alert_id=trigger.alert_id,
        status=status,
        attempts=attempts,
        error=error,
        occurred_at=utc_now(),
    )
    append(pipe, names.NOTIFICATION_RESULTS, result)
    return result
