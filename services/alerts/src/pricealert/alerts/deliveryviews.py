"""Response models of the delivery log: each attempt, each channel's state, a page of a firing's attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from pricealert.alerts.deliverystate import ChannelTally
from pricealert.alerts.models import Delivery
from pricealert.common.events import DeliveryStatus

EXAMPLE_CHANNEL = "5f3c2a10-7b1e-4d2a-9c3b-8e4f5a6b7c8d"
ChannelState = Literal["pending", "sent", "failed"]


class ChannelDeliveryOut(BaseModel):
    """One firing's delivery on one channel."""

    channel_id: str = Field(
        description="The channel's id (`email`: the account's own address).", examples=[EXAMPLE_CHANNEL]
    )
    channel_kind: str | None = Field(
        description="email, webhook or apprise (null: no attempt yet on a channel of yours).", examples=["webhook"]
    )
    status: ChannelState = Field(
        description="sent once an attempt delivered; failed once the last attempt gave up; pending otherwise "
        "(not tried yet, or retrying).",
        examples=["pending"],
    )
    attempts: int = Field(description="The attempts made so far.", examples=[3])
    error: str | None = Field(default=None, description="Why it failed, when it did.", examples=[None])

    @classmethod
    def of(cls, tally: ChannelTally) -> ChannelDeliveryOut:
        """The API's view of a channel's tally."""
        failed = tally.status == DeliveryStatus.FAILED.value
        return cls(
            channel_id=tally.channel_id,
            channel_kind=tally.channel_kind,
            status=tally.status,
            attempts=tally.attempts,
            error=tally.error if failed else None,
        )


class DeliveryOut(BaseModel):
    """One attempt to deliver a firing on one channel."""

    channel_id: str = Field(description="The channel's id (`email`: the account's address).", examples=["email"])
    channel_kind: str = Field(description="email, webhook or apprise.", examples=["webhook"])
    attempt: int = Field(description="The attempt's number (0: refused before any attempt).", examples=[2])
    status: DeliveryStatus = Field(
        description="sent (delivered), retrying (another attempt is due at next_retry_at) or failed (given up).",
        examples=["retrying"],
    )
    occurred_at: datetime = Field(description="When the attempt ended.", examples=["2025-01-02T08:30:01.250000Z"])
    error: str | None = Field(description="Why it did not deliver.", examples=["HTTP 500"])
    reply: str | None = Field(
        description="The receiver's answer, short: an HTTP status line or the SMTP server's reply.",
        examples=["HTTP 500"],
    )
    http_status: int | None = Field(description="A webhook's HTTP status (null: none, or not HTTP).", examples=[500])
    next_retry_at: datetime | None = Field(
        description="retrying: when the next attempt is due.", examples=["2025-01-02T08:30:05.000000Z"]
    )

    @classmethod
    def of(cls, row: Delivery) -> DeliveryOut:
        """The API's view of a log row."""
        return cls(
            channel_id=row.channel_id,
            channel_kind=row.channel_kind,
            attempt=row.attempt,
            status=DeliveryStatus(row.status),
            occurred_at=row.occurred_at,
            error=row.error,
            reply=row.reply,
            http_status=row.http_status,
            next_retry_at=row.next_retry_at,
        )


class DeliveryPage(BaseModel):
    """One page of a firing's delivery attempts, oldest first, with each channel's state and the firing's."""

    firing_id: str = Field(description="The firing's id (as GET /alerts/{id}/firings shows it).", examples=["3f0c:3"])
    delivery_status: DeliveryStatus | None = Field(
        description="sent when every channel delivered; failed when one gave up and none is pending; else pending.",
        examples=["failed"],
    )
    delivery_error: str | None = Field(
        description="Which channels failed and why.", examples=["webhook 5f3c2a10…: HTTP 500 after 31 attempts"]
    )
    delivery_attempts: int | None = Field(description="The attempts on every channel together.", examples=[32])
    channels: list[ChannelDeliveryOut] = Field(description="Each channel's delivery of this firing.")
    items: list[DeliveryOut] = Field(description="The attempts on this page.")
    total: int = Field(description="How many attempts the log holds for this firing.", examples=[32])
    page: int = Field(examples=[1])
    page_size: int = Field(examples=[50])
    next: str | None = Field(description="Relative URL of the next page, or null.", examples=[None])
    previous: str | None = Field(description="Relative URL of the previous page, or null.", examples=[None])
