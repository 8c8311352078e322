"""Every stream a consumer group reads, with the groups that read it and a valid entry to build garbage from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from pricealert.common import names
from pricealert.common.channels import ChannelTestRequest
from pricealert.common.entries import Fields
from pricealert.common.events import (
    AccountEvent,
    AccountEventType,
    AlertEvent,
    AlertEventType,
    Condition,
    DeliveryStatus,
    NotificationResult,
    Tick,
    Trigger,
    now_ms,
)
from pricealert.common.shards import shard_of


@dataclass(frozen=True)
class ReadStream:
    """A stream, every consumer group that reads it (each dead-letters a bad entry once), and a valid entry."""

    stream: str
    groups: tuple[str, ...]
    good: Fields


def trigger_sample(symbol: str) -> Trigger:
    """A valid trigger of an alert nobody created."""
    alert_id = uuid.uuid4().hex
    return Trigger(
        trigger_id=alert_id,
        alert_id=alert_id,
        user_id="nobody",
        email="nobody@example.com",
        symbol=symbol,
        condition=Condition.ABOVE,
        target_price=Decimal("1"),
        price=Decimal("2"),
        trade_id=1,
        exchange_time=now_ms(),
        tick_received_at=now_ms(),
        fired_at=now_ms(),
    )


def read_streams(symbol: str, shards: int) -> list[ReadStream]:
    """Every consumed stream: `symbol`'s shard's four data streams, the account events and the channel tests."""
    shard, now = shard_of(symbol, shards), datetime.now(UTC)
    tick = Tick(symbol=symbol, price=Decimal("1.5"), trade_id=1, exchange_time=now_ms(), received_at=now_ms())
    alert = AlertEvent(
        type=AlertEventType.CREATED,
        event_id=uuid.uuid4().hex,
        alert_id=uuid.uuid4().hex,
        user_id="nobody",
        email="nobody@example.com",
        symbol=symbol,
        condition=Condition.ABOVE,
        target_price=Decimal("1"),
        occurred_at=now,
    )
    result = NotificationResult(
        trigger_id="t", alert_id="a", status=DeliveryStatus.SENT, attempts=1, occurred_at=now, user_id="nobody"
    )
    account = AccountEvent(
        type=AccountEventType.VERIFIED,
        event_id=uuid.uuid4().hex,
        user_id="nobody",
        email="n@example.com",
        occurred_at=now,
    )
    test = ChannelTestRequest(
        request_id=uuid.uuid4().hex, channel_id="email", user_id="nobody", email="n@example.com", requested_at=now
    )
    every_trigger_group = (names.GROUP_NOTIFIER, names.GROUP_ALERTS, names.GROUP_INGEST, names.GROUP_FEED)
    return [
        ReadStream(names.ticks_stream(shard), (names.GROUP_EVALUATOR,), tick.to_fields()),
        ReadStream(
            names.alert_events_stream(shard),
            (names.GROUP_EVALUATOR, names.GROUP_INGEST, names.GROUP_FEED),
            alert.to_fields(),
        ),
        ReadStream(names.triggers_stream(shard), every_trigger_group, trigger_sample(symbol).to_fields()),
        ReadStream(
            names.notification_results_stream(shard), (names.GROUP_ALERTS, names.GROUP_FEED), result.to_fields()
        ),
        ReadStream(names.ACCOUNT_EVENTS, (names.GROUP_NOTIFIER,), account.to_fields()),
        ReadStream(names.CHANNEL_TESTS, (names.GROUP_NOTIFIER,), test.to_fields()),
    ]


def dangling_entries(symbol: str, shards: int) -> list[tuple[ReadStream, Fields]]:
    """Valid entries about things that do not exist, all of one made-up user: a deleted alert, a result of a trigger,
    a test of a channel and a verified account nobody has. Not garbage (a consumer takes them as late events: the
    feed writer adds the first two to that user's feed), yet no consumer may stop on them, keep them pending or mail."""
    by_kind = {names.stream_kind(read.stream): read for read in read_streams(symbol, shards)}
    now, ghost = datetime.now(UTC), uuid.uuid4().hex
    alert = AlertEvent.from_fields(by_kind[names.ALERT_EVENTS_KIND].good)
    deleted = alert.model_copy(
        update={"type": AlertEventType.DELETED, "alert_id": ghost, "event_id": ghost, "user_id": ghost}
    )
    result = NotificationResult(
        trigger_id=ghost, alert_id=ghost, status=DeliveryStatus.SENT, attempts=1, occurred_at=now, user_id=ghost
    )
    test = ChannelTestRequest(
        request_id=ghost, channel_id=f"ch-{ghost}", user_id=ghost, email="n@example.com", requested_at=now
    )
    verified = AccountEvent(
        type=AccountEventType.VERIFIED, event_id=ghost, user_id=ghost, email="n@example.com", occurred_at=now
    )
    return [
        (by_kind[names.ALERT_EVENTS_KIND], deleted.to_fields()),
        (by_kind[names.NOTIFICATION_RESULTS_KIND], result.to_fields()),
        (by_kind[names.CHANNEL_TESTS], test.to_fields()),
        (by_kind[names.ACCOUNT_EVENTS], verified.to_fields()),
    ]
