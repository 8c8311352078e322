"""The live feed's contract: one FeedEvent per thing that happened to a user's alert, on the user's own stream.

Written by the alerts worker (its feed writer reads alert-events, triggers and notification-results in group
`feed`) to names.feed_stream(user_id), trimmed to names.FEED_MAXLEN; served as Server-Sent Events by GET /events,
each event's SSE id its entry id (so Last-Event-ID resumes after it) and its SSE event name its `type`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pricealert.common.events import Event
from pricealert.common.prices import Price


class FeedEventType(StrEnum):
    """What the feed tells: the alert's lifecycle, its firings and each firing's deliveries."""

    CREATED = "alert.created"
    UPDATED = "alert.updated"
    DELETED = "alert.deleted"
    EXPIRED = "alert.expired"
    PAUSED = "alert.paused"  # by the hourly limit of firings (a paused PATCH is alert.updated with status paused)
    FIRED = "alert.fired"
    DELIVERED = "delivery.sent"  # one channel delivered one firing
    FAILED = "delivery.failed"  # one channel gave up on one firing (error says why)
    RETRYING = "delivery.retrying"  # one attempt failed, another is scheduled


class FeedEvent(Event):
    """One entry of a user's feed (flat fields, like every stream event); `source_id` names the event it came from,
    so a client can drop the rare duplicate a crashed writer leaves."""

    type: FeedEventType
    source_id: str  # the alert event's id, the trigger id, or `<trigger id>@<channel id>#<attempt>`
    alert_id: str
    user_id: str
    symbol: str | None = None
    status: str | None = None  # the alert's status after the event, or the delivery's
    trigger_id: str | None = None
    firing: int | None = None
    price: Price | None = None  # the canonical text in the feed's field and in the SSE data (`64818.28`)
    channel_id: str | None = None
    attempt: int | None = None
    error: str | None = None
    occurred_at: datetime
