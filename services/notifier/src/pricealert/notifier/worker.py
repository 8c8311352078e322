"""The notifier process: one email per trigger, a lease against concurrent sends, a result either way."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, PermanentError, StreamConsumer
from pricealert.common.events import DeliveryStatus, NotificationResult, Trigger, utc_now
from pricealert.common.publisher import maxlen_for
from pricealert.notifier.mail import UnsafeHeader, render
from pricealert.notifier.sender import SendFailed, SmtpPool
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()
SERVICE = "notifier"
SENT_TTL_S = 30 * 24 * 3600  # longer than any redelivery horizon of the triggers stream
LEASE_MS = 120_000


class LeaseHeld(Exception):
    """Another replica is sending this trigger right now."""


class Notifier:
    """Sends the email of each trigger at most once per accepted delivery and records the outcome."""

    def __init__(self, redis: Redis, settings: NotifierSettings, pool: SmtpPool) -> None:
        self.redis = redis
        self.settings = settings
        self.pool = pool

    async def handle_batch(self, messages: Sequence[Message]) -> None:
        """Handle a batch concurrently; raise if any trigger still needs a retry."""
        results = await asyncio.gather(*(self.handle(m) for m in messages), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def handle(self, message: Message) -> None:
        """Send one trigger's email unless it was sent already."""
        trigger = Trigger.from_fields(message.fields)
        bound = log.bind(trigger_id=trigger.trigger_id, alert_id=trigger.alert_id)
        if await self.redis.exists(names.notifier_sent_key(trigger.trigger_id)):
            bound.info("email.already_sent")
            return
        lease = names.notifier_lease_key(trigger.trigger_id)
        if not await self.redis.set(lease, self.settings.consumer_name, nx=True, px=LEASE_MS):
            raise LeaseHeld(trigger.trigger_id)
        try:
            mail = render(trigger, mail_from=self.settings.mail_from, app_url=self.settings.app_url)
        except UnsafeHeader as exc:
            await self.redis.delete(lease)
            await self._record(trigger, DeliveryStatus.FAILED, message.deliveries, str(exc))
            raise PermanentError(str(exc)) from exc
        try:
            await self.pool.send(mail)
        except SendFailed as failure:
            await self.redis.delete(lease)
            final = failure.permanent or message.deliveries >= self.settings.max_deliveries
            bound.warning("email.failed", reason=failure.reason, attempts=message.deliveries, final=final)
            if not final:
                raise
            await self._record(trigger, DeliveryStatus.FAILED, message.deliveries, failure.reason)
            raise PermanentError(failure.reason) from failure
        await self._record(trigger, DeliveryStatus.SENT, message.deliveries, None)
        bound.info("email.sent", to=trigger.email, attempts=message.deliveries)

    async def _record(self, trigger: Trigger, status: DeliveryStatus, attempts: int, error: str | None) -> None:
        result = NotificationResult(trigger_id=trigger.trigger_id, alert_id=trigger.alert_id, status=status,
                                    attempts=attempts, error=error, occurred_at=utc_now())
        async with self.redis.pipeline(transaction=True) as pipe:
            if status is DeliveryStatus.SENT:
                pipe.set(names.notifier_sent_key(trigger.trigger_id), result.occurred_at.isoformat(), ex=SENT_TTL_S)
            pipe.xadd(names.NOTIFICATION_RESULTS, result.to_fields(),  # type: ignore[arg-type]
                      maxlen=maxlen_for(names.NOTIFICATION_RESULTS), approximate=True)
            pipe.delete(names.notifier_lease_key(trigger.trigger_id))
            await pipe.execute()


def triggers_consumer(redis: Redis, settings: NotifierSettings, pool: SmtpPool) -> StreamConsumer:
    """The consumer of the triggers stream in the notifier's group."""
    notifier = Notifier(redis, settings, pool)
    options = ConsumerOptions(
        stream=names.TRIGGERS, group=names.GROUP_NOTIFIER, consumer=settings.consumer_name, service=SERVICE,
        batch_size=settings.concurrency * 4, reclaim_idle_ms=settings.reclaim_idle_ms,
        max_deliveries=settings.max_deliveries,
    )
    return StreamConsumer(redis, options, notifier.handle_batch)


async def run(redis: Redis, settings: NotifierSettings, stop: asyncio.Event) -> None:
    """Send mails until `stop` is set."""
    pool = SmtpPool(settings, size=settings.concurrency)
    try:
        await triggers_consumer(redis, settings, pool).run(stop)
    finally:
        await pool.close()
