"""The notification-results streams: one NotificationResult per attempt to deliver a trigger on a channel (and per
refusal), on its shard's stream, written in the caller's MULTI."""

from __future__ import annotations

from datetime import datetime

from pricealert.common.channels import ACCOUNT_EMAIL
from pricealert.common.events import DeliveryStatus, NotificationResult, Trigger, utc_now
from pricealert.common.publisher import append
from pricealert.common.redisconn import RedisPipeline


def add_result(
    pipe: RedisPipeline,
    shard: int,
    trigger: Trigger,
    status: DeliveryStatus,
    error: str | None,
    attempts: int,
    *,
    channel_id: str = ACCOUNT_EMAIL,
    channel_kind: str = "email",
    reply: str | None = None,
    http_status: int | None = None,
    next_retry_at: datetime | None = None,
    channel_disabled: bool = False,
) -> NotificationResult:
    """Add to `pipe`: append one attempt's result to `shard`'s notification-results stream; returns the result."""
    result = NotificationResult(
        trigger_id=trigger.trigger_id,
        alert_id=trigger.alert_id,
        status=status,
        attempts=attempts,
        error=error,
        occurred_at=utc_now(),
        user_id=trigger.user_id,
        channel_id=channel_id,
        channel_kind=channel_kind,
        reply=reply,
        http_status=http_status,
        next_retry_at=next_retry_at,
        channel_disabled=channel_disabled,
    )
    append(pipe, NotificationResult.stream_of(shard), result)
    return result
