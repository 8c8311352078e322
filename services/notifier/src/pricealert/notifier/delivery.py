"""Delivering triggers: lease, send, and record each outcome atomically with its bookkeeping."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from pricealert.common import names
from pricealert.common.deadletter import dead_letter_entry, dead_letter_fields
from pricealert.common.events import DeliveryStatus, Fields, Trigger, now_ms
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient, RedisPipeline
from pricealert.notifier.commit import Ops, ShardCommits
from pricealert.notifier.lease import Leases, LeaseState
from pricealert.notifier.mail import render
from pricealert.notifier.metrics import EMAILS, IN_FLIGHT, RECORD_RETRIES, SMTP_SECONDS, TRIGGER_TO_ACCEPT_SECONDS
from pricealert.notifier.results import add_result
from pricealert.notifier.retry import Retrying, RetryQueue, backoff_s
from pricealert.notifier.sender import SendFailed, SmtpPool
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()
_stdlib_log = logging.getLogger(__name__)
SENT_TTL_S = 30 * 24 * 3600  # longer than any redelivery horizon of the triggers stream
NOT_VERIFIED = (
    "email_not_verified: the account's address is not verified; verify it (the link in the "
    "verification mail, or POST /auth/verify/resend for a new one) to receive alert mail"
)


class Outcome(StrEnum):
    """What became of one trigger in a batch."""

    SENT = "sent"
    RETRY = "retry"  # transient failure: waits in the retry queue
    FAILED = "failed"  # permanent failure or retries exhausted: failed result and dead letter
    DUPLICATE = "duplicate"  # sent already, or already waiting in the retry queue: only acknowledged
    HELD = "held"  # another sender holds the lease: left where it is, it comes back later
    UNVERIFIED = "unverified"  # the user's address is not verified: no mail, a failed result saying so


for _outcome in Outcome:  # every outcome from 0 on the first scrape: a rate over it is 0, not absent
    EMAILS.labels(_outcome)


@dataclass
class Job:
    """One trigger to deliver, from a shard's triggers stream or from its retry queue."""

    shard: int  # every key of the trigger lives in this shard (the shard of the stream it came on)
    trigger: Trigger
    fields: Fields
    attempt: int  # the number of the attempt about to be made
    entry_id: str  # the triggers-stream entry it came from (for the dead letter)
    ack_ids: list[str] = field(default_factory=list)  # stream entries to acknowledge with the outcome
    first_failed_ms: int | None = None
    from_queue: bool = False
    lease_token: str = ""
    leased_at: float = 0.0


class Deliverer:
    """Sends the email of each trigger once, retries transient failures later, and reports every outcome.

    Triggers are handed over with `submit`, which returns as soon as they are leased and under way: the
    caller reads the next entries while these are being sent, so a mail never waits for a slower one.
    """

    def __init__(
        self, redis: RedisClient, settings: NotifierSettings, pool: SmtpPool, queue: RetryQueue, max_in_flight: int
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.pool = pool
        self.queue = queue
        self.commits = ShardCommits(redis, Trigger.stream_of, names.GROUP_NOTIFIER)
        self.leases = Leases(redis, settings.consumer_name, settings.lease_ms)
        self._room = asyncio.Semaphore(max_in_flight)
        self._in_flight: set[asyncio.Task[Outcome]] = set()
        # Renew a lease before sending unless at least a full send plus this much of it is left.
        self._renew_after_s = min(5.0, settings.send_timeout_s) / 2

    async def submit(self, jobs: Sequence[Job]) -> list[asyncio.Task[Outcome]]:
        """Lease `jobs` and start sending them, waiting only for room among the mails in flight."""
        tasks: list[asyncio.Task[Outcome]] = []
        for job in await self._lease(jobs):
            await self._room.acquire()
            task = asyncio.create_task(self._attempt(job))
            self._in_flight.add(task)
            IN_FLIGHT.inc()
            task.add_done_callback(self._finished)
            tasks.append(task)
        return tasks

    async def deliver(self, jobs: Sequence[Job]) -> Counter[Outcome]:
        """Deliver `jobs` and wait for every outcome; raises the first Redis failure, if any."""
        results = await asyncio.gather(*await self.submit(jobs), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return Counter(r for r in results if isinstance(r, Outcome))

    async def drain(self) -> None:
        """Wait until every mail in flight is settled (on shutdown)."""
        if self._in_flight:
            log.info("email.draining", in_flight=len(self._in_flight))
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        self._in_flight.discard(task)
        self._room.release()
        IN_FLIGHT.dec()
        if not task.cancelled() and task.exception() is not None:
            # Its entry stays pending (or its retry stays claimed) and comes back after the reclaim time.
            log.warning("email.unsettled", error=f"{type(task.exception()).__name__}: {task.exception()}")

    async def _lease(self, jobs: Sequence[Job]) -> list[Job]:
        """_lease_shard per shard of the batch (there is one: a batch comes from one shard's stream or queue)."""
        shards = sorted({job.shard for job in jobs})
        return [ready for k in shards for ready in await self._lease_shard(k, [j for j in jobs if j.shard == k])]

    async def _lease_shard(self, shard: int, jobs: list[Job]) -> list[Job]:
        """One script call for the shard's jobs: sent already? waiting for a retry? else take the lease."""
        for job in jobs:
            job.lease_token = self.leases.new_token()
        states = await self.leases.take(
            shard,
            [job.trigger.trigger_id for job in jobs],
            [job.lease_token for job in jobs],
            [job.from_queue for job in jobs],
            [job.trigger.user_id for job in jobs],
        )
        leased_at = time.monotonic()
        ready: list[Job] = []
        settled: list[Job] = []
        unverified: list[Job] = []
        for job, state in zip(jobs, states, strict=True):
            if state is LeaseState.LEASED:
                job.leased_at = leased_at
                ready.append(job)
            elif state is LeaseState.HELD:  # left pending: it comes back after the reclaim time
                EMAILS.labels(Outcome.HELD).inc()
                _debug("email.held", job)
            elif state is LeaseState.UNVERIFIED:
                unverified.append(job)
            else:
                settled.append(job)
        if unverified:
            await self._refuse_unverified(shard, unverified)
        if settled:
            acks = [i for job in settled for i in job.ack_ids]
            await self.commits[shard].commit(lambda p: self._settle_duplicates(p, settled), ack=acks)
            EMAILS.labels(Outcome.DUPLICATE).inc(len(settled))
            for job in settled:
                _debug("email.duplicate", job)
        return ready

    async def _refuse_unverified(self, shard: int, jobs: list[Job]) -> None:
        """Record "failed, address not verified" for each, without a retry or a dead letter: it is no fault."""

        def ops(pipe: RedisPipeline) -> None:
            for job in jobs:
                self._result(pipe, job, DeliveryStatus.FAILED, NOT_VERIFIED, attempts=0, dead_letter=False)

        leases = [names.notifier_lease_key(shard, job.trigger.trigger_id) for job in jobs]  # taken by the check
        await self.commits[shard].commit(ops, delete=leases, ack=[i for job in jobs for i in job.ack_ids])
        EMAILS.labels(Outcome.UNVERIFIED).inc(len(jobs))
        for job in jobs:
            log.info(
                "email.refused.unverified",
                alert_id=job.trigger.alert_id,
                trigger_id=job.trigger.trigger_id,
                user_id=job.trigger.user_id,
            )

    @staticmethod
    def _settle_duplicates(pipe: RedisPipeline, settled: list[Job]) -> None:
        for job in settled:
            if job.from_queue:  # sent meanwhile through another copy of the trigger
                RetryQueue.forget(pipe, job.shard, job.trigger.trigger_id)

    async def _attempt(self, job: Job) -> Outcome:
        trigger = job.trigger
        with structlog.contextvars.bound_contextvars(alert_id=trigger.alert_id, trigger_id=trigger.trigger_id):
            # The slot is held until the outcome is recorded, so at most `concurrency` accepted mails are
            # ever unrecorded: that bounds the duplicates a crash can cause.
            async with self.pool.slot():
                renew = time.monotonic() - job.leased_at > self._renew_after_s
                if renew and not await self.leases.renew(job.shard, trigger.trigger_id, job.lease_token):
                    EMAILS.labels(Outcome.HELD).inc()
                    _debug("email.held", job)
                    return Outcome.HELD  # someone else took over; whoever holds it settles the trigger
                failure = await self._send(job)
                outcome, ops = self._decide(job, failure)
                await self._record(job, ops)
            EMAILS.labels(outcome).inc()
            return outcome

    async def _send(self, job: Job) -> SendFailed | None:
        try:
            mail = render(job.trigger, self.settings)
        except Exception as exc:  # a trigger that cannot be rendered never will be
            return SendFailed(f"cannot render the email: {exc}", permanent=True)
        started = time.perf_counter()
        try:
            await self.pool.deliver(mail)
        except SendFailed as exc:
            return exc
        finally:
            SMTP_SECONDS.observe(time.perf_counter() - started)
        TRIGGER_TO_ACCEPT_SECONDS.observe(max(0.0, (now_ms() - job.trigger.fired_at) / 1000))
        return None

    async def _record(self, job: Job, ops: Ops) -> None:
        """Record the outcome; if Redis fails, keep trying while the lease holds rather than send again."""
        deadline = time.monotonic() + self.settings.lease_ms / 1000
        pause = 0.05
        while True:
            try:
                await self.commits[job.shard].commit(
                    ops, delete=[names.notifier_lease_key(job.shard, job.trigger.trigger_id)], ack=job.ack_ids
                )
                return
            except TRANSIENT_REDIS_ERRORS as exc:
                if time.monotonic() + pause > deadline:
                    raise
                RECORD_RETRIES.inc()
                log.warning("email.record.retrying", error=f"{type(exc).__name__}: {exc}", retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(1.0, pause * 2)

    def _decide(self, job: Job, failure: SendFailed | None) -> tuple[Outcome, Ops]:
        trigger = job.trigger
        if failure is None:
            log.info("email.sent", to=trigger.email, attempts=job.attempt)
            return Outcome.SENT, lambda pipe: self._result(pipe, job, DeliveryStatus.SENT, None)
        now = now_ms()
        first_failed = job.first_failed_ms if job.first_failed_ms is not None else now
        waited_s = (now - first_failed) / 1000
        if not failure.permanent and waited_s < self.settings.retry_for_s:
            delay = backoff_s(job.attempt, self.settings.backoff_base_s, self.settings.backoff_max_s)
            log.info("email.retry.scheduled", attempts=job.attempt, retry_in_s=round(delay, 2), reason=failure.reason)
            item = Retrying(
                trigger_id=trigger.trigger_id,
                fields=job.fields,
                attempts=job.attempt,
                first_failed_ms=first_failed,
                entry_id=job.entry_id,
                last_error=failure.reason,
            )
            return Outcome.RETRY, lambda pipe: RetryQueue.schedule(pipe, job.shard, item, now + int(delay * 1000))
        reason = (
            failure.reason
            if failure.permanent
            else (f"gave up after {job.attempt} attempts in {waited_s:.0f} s; last error: {failure.reason}")
        )
        log.warning("email.failed", reason=reason, attempts=job.attempt, permanent=failure.permanent)
        return Outcome.FAILED, lambda pipe: self._result(pipe, job, DeliveryStatus.FAILED, reason)

    def _result(
        self,
        pipe: RedisPipeline,
        job: Job,
        status: DeliveryStatus,
        error: str | None,
        *,
        attempts: int | None = None,
        dead_letter: bool = True,
    ) -> None:
        trigger = job.trigger
        result = add_result(pipe, job.shard, trigger, status, error, job.attempt if attempts is None else attempts)
        if status is DeliveryStatus.SENT:
            sent_key = names.notifier_sent_key(job.shard, trigger.trigger_id)
            pipe.set(sent_key, result.occurred_at.isoformat(), ex=SENT_TTL_S)
        elif dead_letter:
            # The commit acknowledges the job's entries with the outcome (a retried one was acknowledged before).
            letter = dead_letter_fields(
                job.fields,
                stream=Trigger.stream_of(job.shard),  # its dead letters: the shard stream's, in the shard's slot
                entry_id=job.entry_id,
                group=names.GROUP_NOTIFIER,
                consumer=self.settings.consumer_name,
                reason=error or "failed",
                deliveries=job.attempt,
            )
            dead_letter_entry(pipe, letter, ack=False)
        if job.from_queue:  # a stream copy never gets here while the trigger waits in the queue
            RetryQueue.forget(pipe, job.shard, trigger.trigger_id)


def _debug(event: str, job: Job) -> None:
    if _stdlib_log.isEnabledFor(logging.DEBUG):
        log.debug(event, alert_id=job.trigger.alert_id, trigger_id=job.trigger.trigger_id)
