"""Where alerts live: the one protocol both databases implement (each change commits with its outbox event).

`SqlAlertStore` (sqlstore.py) is the SQLAlchemy path, every operation on SQLite and the rare writes on
Postgres; `PgAlertStore` (pgstore.py) answers the request paths and the relay's take on Postgres through
asyncpg directly, where that measured faster. `open_store` picks one for a database URL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from pricealert.alerts.deliverystate import ChannelTally
from pricealert.alerts.models import Alert, Channel, Delivery, Firing, NewAlert
from pricealert.alerts.views import AlertView

if TYPE_CHECKING:
    from pricealert.alerts.editing import Edit


@dataclass(frozen=True)
class OutboxRow:
    """An event taken from the outbox."""

    id: int
    stream: str
    fields: dict[str, str]


@dataclass(frozen=True)
class TriggerRecord:
    """What a trigger event writes: its firing, and the alert's count, latest firing and status."""

    alert_id: str
    trigger_id: str
    fired_at: datetime
    price: Decimal
    exchange_time: datetime
    firing: int = 1
    trade_id: int | None = None
    version: int = 1
    once: bool = True  # a once alert's firing ends it (triggered); an every_time alert's does not
    paused: bool = False  # this firing reached the evaluator's hourly limit: the alert is paused
    hour_firings: int | None = None  # this firing's number within its hour (the evaluator's count)
    channel_ids: str | None = None  # the trigger's channels, comma-separated (None: the account's email)


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt's row in the delivery log, which its firing's (and its alert's) delivery aggregates."""

    alert_id: str
    status: str
    error: str | None
    attempts: int  # this attempt's number
    trigger_id: str = ""
    channel_id: str = "email"
    channel_kind: str = "email"
    reply: str | None = None
    http_status: int | None = None
    next_retry_at: datetime | None = None
    occurred_at: datetime | None = None  # None: now
    channel_disabled: bool = False  # the webhook answered 410: its channel is disabled
    user_id: str | None = None


@dataclass(frozen=True)
class RecordedDeliveries:
    """What a batch of attempts changed: per record, whether it was new; the channels a 410 disabled."""

    changed: list[bool]
    disabled: list[Channel]


@dataclass(frozen=True)
class DeliveryLog:
    """One page of a firing's attempts, oldest first, with each channel's tally and the firing's delivery."""

    firing: Firing
    channels: list[ChannelTally]
    items: Sequence[Delivery]
    total: int


class ActiveLimitReached(Exception):
    """Resuming the alert would put its owner over the limit of active alerts."""

    def __init__(self, active: int) -> None:
        super().__init__(f"{active} active alerts")
        self.active = active


class AlertStore(Protocol):
    """Alerts and their outbox; every method that changes an alert stages its alert-events entry with it."""

    async def start(self) -> None:
        """Connect (after the migrations: the Postgres functions come from them)."""

    async def close(self) -> None:
        """Close every connection."""

    async def ping(self) -> None:
        """Raise unless the database answers."""

    async def create(self, alert: NewAlert, *, limit: int) -> int | None:
        """Store the alert and alert.created unless the user holds `limit` active alerts; returns their count then."""

    async def get(self, alert_id: str, user_id: str) -> AlertView | None:
        """One of the user's alerts."""

    async def list_alerts(
        self,
        user_id: str,
        *,
        status: str | None,
        symbol: str | None,
        offset: int,
        limit: int,
        condition: str | None = None,
    ) -> tuple[Sequence[AlertView], int]:
        """One page of the user's alerts, newest first, and the total matching."""

    async def update(
        self, alert_id: str, user_id: str, plan: Callable[[Alert], Edit | None], *, limit: int
    ) -> AlertView | None:
        """Apply `plan`'s edit of the locked alert and stage alert.updated (None: not the user's alert).

        `plan` raises to refuse; an edit that resumes the alert raises ActiveLimitReached at `limit` active alerts.
        """

    async def firings(self, alert_id: str, *, offset: int, limit: int) -> tuple[Sequence[Firing], int]:
        """One page of the alert's firings, newest first, and how many there are."""

    async def delete(self, alert_id: str, user_id: str) -> bool | None:
        """Soft-delete and stage alert.deleted: True if this call deleted it, False if it was, None if missing."""

    async def expire_due(self, now: datetime, limit: int) -> list[Alert]:
        """Expire up to `limit` active or paused alerts due at `now`, staging alert.expired for each; returns them."""

    async def record_triggers(self, records: Sequence[TriggerRecord]) -> list[bool]:
        """Store each firing (in the given order, one transaction); True where it stored this firing."""

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> RecordedDeliveries:
        """Log each attempt once and update its firing's and alert's delivery, disabling the channels a 410 gave up
        (one transaction); a success is never undone."""

    async def deliveries(self, alert_id: str, trigger_id: str, *, offset: int, limit: int) -> DeliveryLog | None:
        """One page of the attempts at one of the alert's firings, oldest first (None: no such firing)."""

    async def firing_channels(self, firings: Sequence[Firing]) -> dict[str, list[ChannelTally]]:
        """Each firing's channels' tallies (no errors), by trigger id."""

    async def stage_active_after(self, after_id: str, limit: int) -> list[str]:
        """Stage alert.created again for up to `limit` active alerts with ids above `after_id`; their ids, in order."""

    async def outbox_has_rows(self) -> bool:
        """Whether any event waits in the outbox (a cheap read, no lock)."""

    def take_outbox(self, limit: int) -> AbstractAsyncContextManager[list[OutboxRow] | None]:
        """The oldest rows, deleted when the block exits cleanly (kept otherwise); None if another relay holds them."""
