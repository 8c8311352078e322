"""Contract of pricealert:{s<k>}:notification-results: what the notifier writes reads back as a NotificationResult."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from redis.asyncio import Redis

from pricealert.common.events import Condition, DeliveryStatus, NotificationResult, Trigger, trigger_id_for
from pricealert.notifier.results import add_result


def trigger(alert_id: str) -> Trigger:
    return Trigger(
        trigger_id=trigger_id_for(alert_id),
        alert_id=alert_id,
        user_id="u1",
        email="u@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal("100.5"),
        price=Decimal("101"),
        trade_id=7,
        exchange_time=1,
        tick_received_at=2,
        fired_at=int(datetime.now(UTC).timestamp() * 1000),
    )


async def test_results_written_by_the_notifier_read_back_as_notification_results(redis: Redis) -> None:
    shard = 5
    async with redis.pipeline(transaction=True) as pipe:
        written = [
            add_result(pipe, shard, trigger("a1"), DeliveryStatus.SENT, None, 1),
            add_result(pipe, shard, trigger("a2"), DeliveryStatus.FAILED, "550 5.1.1 mailbox unavailable: «ü»", 3),
            add_result(pipe, shard, trigger("a3"), DeliveryStatus.FAILED, "email_not_verified: verify it", 0),
        ]
        await pipe.execute()
    assert await redis.keys("*notification-results*") == [NotificationResult.stream_of(shard).encode()]
    entries = await redis.xrange(NotificationResult.stream_of(shard))
    read = [NotificationResult.from_fields(fields) for _, fields in entries]
    assert read == written
    assert read[0].error is None and read[0].trigger_id == trigger_id_for("a1")
