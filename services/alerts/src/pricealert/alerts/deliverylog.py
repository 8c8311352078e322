"""The delivery log's service side: a notification result as its row, and a firing's log read by its owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pricealert.alerts.deliverystate import MAX_ERROR
from pricealert.alerts.store import DeliveryLog, DeliveryRecord
from pricealert.common.channels import ACCOUNT_EMAIL, ChannelKind
from pricealert.common.errors import NotFound
from pricealert.common.events import DeliveryStatus, NotificationResult

if TYPE_CHECKING:
    from pricealert.alerts.auth import User
    from pricealert.alerts.service import AlertService


def delivery_record(result: NotificationResult) -> DeliveryRecord:
    """The delivery log's row of one attempt (results from before channels are the account email's)."""
    failed = result.status is not DeliveryStatus.SENT
    return DeliveryRecord(
        alert_id=result.alert_id,
        status=result.status.value,
        error=(result.error or result.reply or "unknown error")[:MAX_ERROR] if failed else None,
        attempts=result.attempts,
        trigger_id=result.trigger_id,
        channel_id=result.channel_id or ACCOUNT_EMAIL,
        channel_kind=result.channel_kind or ChannelKind.EMAIL.value,
        reply=None if result.reply is None else result.reply[:MAX_ERROR],
        http_status=result.http_status,
        next_retry_at=result.next_retry_at,
        occurred_at=result.occurred_at,
        channel_disabled=result.channel_disabled,
        user_id=result.user_id,
    )


async def read_deliveries(
    service: AlertService, user: User, alert_id: str, firing_id: str, *, page: int, page_size: int
) -> DeliveryLog:
    """One page of the attempts at one firing of one of the user's alerts, oldest first."""
    await service.get(user, alert_id)  # another user's alert does not exist for them (alert_not_found)
    found = await service.store.deliveries(alert_id, firing_id, offset=(page - 1) * page_size, limit=page_size)
    if found is None:
        raise NotFound(
            f"Alert {alert_id} has no firing {firing_id}.",
            code="firing_not_found",
            details={"id": alert_id, "firing_id": firing_id},
        )
    return found
