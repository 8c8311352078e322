"""The notifier's handlers: triggers from every shard's stream and due retries from its retry queue, one delivery
per trigger and channel (the account's email, other addresses, webhooks, Apprise URLs).

Consumes (group notifier): every shard's pricealert:{s<k>}:triggers (Trigger, here; one consumer per shard, the
replicas share each stream through the group), pricealert:{auth}:account-events (AccountEvent,
accounts.AccountMailer) and pricealert:{channels}:channel-tests (ChannelTestRequest, channeltests.ChannelTester).
Reads the channel registry (names.CHANNEL_REGISTRY, a hash). Produces: each shard's
pricealert:{s<k>}:notification-results (NotificationResult per attempt, delivery.Deliverer), the test replies
(names.channel_test_reply_key: one list per request), and the dead letters pricealert:{s<k>}:triggers:dead and
pricealert:{auth}:account-events:dead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from functools import partial

import structlog

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Received, StreamConsumer
from pricealert.common.events import MalformedEvent, Trigger, now_ms
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.common.runner import gather_until_stopped
from pricealert.notifier.accounts import AccountMailer
from pricealert.notifier.channelsend import ChannelSenders
from pricealert.notifier.channeltests import ChannelTester
from pricealert.notifier.delivery import ChannelSending, Deliverer
from pricealert.notifier.jobs import Entry, Job, fan_out
from pricealert.notifier.retry import RetryQueue
from pricealert.notifier.sender import SmtpPool
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()
SERVICE = "notifier"
IDLE_POLL_S = 0.5  # longest pause of the retry loop when nothing is due (other replicas may add retries)


class Notifier:
    """Hands every shard's triggers-stream entries (one delivery per channel of each) and due retries to one
    Deliverer."""

    def __init__(
        self, redis: RedisClient, settings: NotifierSettings, pool: SmtpPool, channels: ChannelSending | None = None
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.queue = RetryQueue(redis, claim_ms=max(settings.reclaim_idle_ms, settings.lease_ms))
        self.deliverer = Deliverer(redis, settings, pool, self.queue, max_in_flight=self.batch_size, channels=channels)

    @property
    def batch_size(self) -> int:
        """How many triggers one read takes and how many deliveries of each room may be in flight: enough to keep
        the SMTP pool busy."""
        return self.settings.concurrency * 8

    async def handle_batch(self, shard: int, messages: Sequence[Received[Trigger]]) -> None:
        """Start delivering a batch of `shard`'s triggers on their channels; each entry is acknowledged later, with
        the outcome of its last delivery."""
        entries: dict[str, Entry] = {}
        jobs: list[Job] = []
        for message in messages:
            trigger = message.event
            entry = entries.get(trigger.trigger_id)
            if entry is not None:  # the same trigger twice in one read: one send, both entries acknowledged
                entry.ack_ids.append(message.id)
                continue
            entry = entries[trigger.trigger_id] = Entry([message.id])
            jobs += fan_out(shard, trigger, message.fields, message.deliveries, message.id, entry)
        if jobs:
            await self.deliverer.submit(jobs)

    async def retry_due(self, shard: int) -> tuple[int, float | None]:
        """Deliver `shard`'s retries that are due now; returns how many were taken, and if none, the seconds until
        the next is due (None if none waits)."""
        due, until_next = await self.queue.claim_due(shard, now_ms(), self.batch_size)
        jobs: list[Job] = []
        for item in due:
            try:
                trigger = Trigger.from_fields(item.fields)
            except MalformedEvent:  # only well-formed triggers enter the queue; guard against tampering
                log.error("retry.malformed", delivery_id=item.delivery_id)
                continue
            jobs.append(
                Job(
                    shard=shard,
                    trigger=trigger,
                    fields=item.fields,
                    attempt=item.attempts + 1,
                    entry_id=item.entry_id,
                    entry=Entry(unrecorded=1),
                    channel_id=item.channel_id,
                    first_failed_ms=item.first_failed_ms,
                    from_queue=True,
                )
            )
        if jobs:
            await self.deliverer.deliver(jobs)
        return len(due), until_next

    async def run_retries(self, stop: asyncio.Event, shard: int) -> None:
        """Take `shard`'s due retries until `stop` is set; a replica that dies holding some only delays them."""
        while not stop.is_set():
            pause = 0.0
            try:
                taken, until_next = await self.retry_due(shard)
                if not taken:
                    pause = IDLE_POLL_S if until_next is None else min(IDLE_POLL_S, max(0.01, until_next))
            except TRANSIENT_REDIS_ERRORS as exc:
                log.warning("retry.redis_failed", shard=shard, error=str(exc))
                pause = 1.0
            except Exception:  # the claimed retries come back after the claim time; keep the loop alive
                log.exception("retry.failed", shard=shard)
                pause = 1.0
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)

    def consumers(self) -> list[StreamConsumer]:
        """One consumer per shard's triggers stream (a cluster reads one stream per XREADGROUP)."""
        return [self.consumer(shard) for shard in range(self.settings.shards)]

    def consumer(self, shard: int) -> StreamConsumer:
        """The consumer of `shard`'s triggers stream in the notifier's group (acks go with each outcome)."""
        options = ConsumerOptions(
            stream=Trigger.stream_of(shard),
            group=names.GROUP_NOTIFIER,
            consumer=self.settings.consumer_name,
            service=SERVICE,
            batch_size=self.batch_size,
            reclaim_idle_ms=self.settings.reclaim_idle_ms,
            max_deliveries=self.settings.max_deliveries,
            handler_acks=True,
        )
        return StreamConsumer(self.redis, options, partial(self.handle_batch, shard), event=Trigger)


async def run(redis: RedisClient, settings: NotifierSettings, stop: asyncio.Event) -> None:
    """Deliver until `stop` is set, then finish the deliveries in flight."""
    pool = SmtpPool(settings, size=settings.concurrency)
    senders = ChannelSenders(settings)
    notifier = Notifier(redis, settings, pool, senders)
    accounts = AccountMailer(redis, settings, pool, SERVICE)
    tester = ChannelTester(redis, settings, pool, senders, SERVICE)
    try:
        shards = range(settings.shards)
        await gather_until_stopped(
            stop,
            *(consumer.run(stop) for consumer in notifier.consumers()),
            *(notifier.run_retries(stop, shard) for shard in shards),
            accounts.consumer().run(stop),
            tester.consumer().run(stop),
        )
    finally:
        await notifier.deliverer.drain()
        await pool.close()
        await senders.close()
