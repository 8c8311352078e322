"""The notifier's handlers: triggers from the stream and due retries from the retry queue, one email each.

Consumes (group notifier): pricealert:triggers (Trigger, here) and pricealert:account-events (AccountEvent,
accounts.AccountMailer). Produces: pricealert:notification-results (NotificationResult, delivery.Deliverer) and the
dead letters pricealert:triggers:dead and pricealert:account-events:dead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Received, StreamConsumer
from pricealert.common.events import MalformedEvent, Trigger, now_ms
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS
from pricealert.common.runner import gather_until_stopped
from pricealert.notifier.accounts import AccountMailer
from pricealert.notifier.delivery import Deliverer, Job
from pricealert.notifier.retry import RetryQueue
from pricealert.notifier.sender import SmtpPool
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()
SERVICE = "notifier"
IDLE_POLL_S = 0.5  # longest pause of the retry loop when nothing is due (other replicas may add retries)


class Notifier:
    """Hands the triggers stream's entries and the due retries to one Deliverer."""

    def __init__(self, redis: Redis, settings: NotifierSettings, pool: SmtpPool) -> None:
        self.redis = redis
        self.settings = settings
        self.queue = RetryQueue(redis, claim_ms=max(settings.reclaim_idle_ms, settings.lease_ms))
        self.deliverer = Deliverer(redis, settings, pool, self.queue, max_in_flight=self.batch_size)

    @property
    def batch_size(self) -> int:
        """How many triggers one read takes and how many may be in flight: enough to keep the SMTP pool busy."""
        return self.settings.concurrency * 8

    async def handle_batch(self, messages: Sequence[Received[Trigger]]) -> None:
        """Start delivering a batch of triggers; each entry is acknowledged later, together with its outcome."""
        jobs: dict[str, Job] = {}
        for message in messages:
            trigger = message.event
            job = jobs.get(trigger.trigger_id)
            if job is not None:  # the same trigger twice in one read: one send, both entries acknowledged
                job.ack_ids.append(message.id)
                continue
            jobs[trigger.trigger_id] = Job(
                trigger=trigger,
                fields=message.fields,
                attempt=message.deliveries,
                entry_id=message.id,
                ack_ids=[message.id],
            )
        if jobs:
            await self.deliverer.submit(list(jobs.values()))

    async def retry_due(self) -> int:
        """Deliver the retries that are due now; returns how many were taken."""
        due = await self.queue.claim_due(now_ms(), self.batch_size)
        jobs: list[Job] = []
        for item in due:
            try:
                trigger = Trigger.from_fields(item.fields)
            except MalformedEvent:  # only well-formed triggers enter the queue; guard against tampering
                log.error("retry.malformed", trigger_id=item.trigger_id)
                continue
            jobs.append(
                Job(
                    trigger=trigger,
                    fields=item.fields,
                    attempt=item.attempts + 1,
                    entry_id=item.entry_id,
                    first_failed_ms=item.first_failed_ms,
                    from_queue=True,
                )
            )
        if jobs:
            await self.deliverer.deliver(jobs)
        return len(due)

    async def run_retries(self, stop: asyncio.Event) -> None:
        """Take due retries until `stop` is set; a replica that dies holding some only delays them."""
        while not stop.is_set():
            pause = 0.0
            try:
                if not await self.retry_due():
                    until_next = await self.queue.seconds_until_next(now_ms())
                    pause = IDLE_POLL_S if until_next is None else min(IDLE_POLL_S, max(0.01, until_next))
            except TRANSIENT_REDIS_ERRORS as exc:
                log.warning("retry.redis_failed", error=str(exc))
                pause = 1.0
            except Exception:  # the claimed retries come back after the claim time; keep the loop alive
                log.exception("retry.failed")
                pause = 1.0
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)

    def consumer(self) -> StreamConsumer:
        """The consumer of the triggers stream in the notifier's group (acks go with each outcome)."""
        options = ConsumerOptions(
            stream=names.TRIGGERS,
            group=names.GROUP_NOTIFIER,
            consumer=self.settings.consumer_name,
            service=SERVICE,
            batch_size=self.batch_size,
            reclaim_idle_ms=self.settings.reclaim_idle_ms,
            max_deliveries=self.settings.max_deliveries,
            handler_acks=True,
        )
        return StreamConsumer(self.redis, options, self.handle_batch, event=Trigger)


async def run(redis: Redis, settings: NotifierSettings, stop: asyncio.Event) -> None:
    """Send mails until `stop` is set, then finish the mails in flight."""
    pool = SmtpPool(settings, size=settings.concurrency)
    notifier = Notifier(redis, settings, pool)
    accounts = AccountMailer(redis, settings, pool, SERVICE)
    try:
        await gather_until_stopped(
            stop, notifier.consumer().run(stop), notifier.run_retries(stop), accounts.consumer().run(stop)
        )
    finally:
        await notifier.deliverer.drain()
        await pool.close()
