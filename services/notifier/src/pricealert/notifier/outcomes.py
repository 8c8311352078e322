"""What an attempt comes to (sent, retry, failed) and the commands that record it: the attempt's result, the sent mark,
the retry queue item or the dead letter, each kind of channel on its own retry schedule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

import structlog

from pricealert.common import names
from pricealert.common.deadletter import dead_letter_entry, dead_letter_fields
from pricealert.common.events import DeliveryStatus, NotificationResult, Trigger, now_ms
from pricealert.common.redisconn import RedisPipeline
from pricealert.notifier.commit import Ops, ShardCommits, nothing
from pricealert.notifier.delivered import Delivered
from pricealert.notifier.jobs import Entry, Job
from pricealert.notifier.metrics import EMAILS
from pricealert.notifier.results import add_result
from pricealert.notifier.retry import Retrying, RetryQueue, backoff_s
from pricealert.notifier.sender import SendFailed
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()
SENT_TTL_S = 30 * 24 * 3600  # longer than any redelivery horizon of the triggers stream


class Outcome(StrEnum):
    """What became of one delivery in a batch."""

    SENT = "sent"
    RETRY = "retry"  # transient failure: waits in the retry queue
    FAILED = "failed"  # permanent failure or retries exhausted: failed result and dead letter
    DUPLICATE = "duplicate"  # sent already, or already waiting in the retry queue: only acknowledged
    HELD = "held"  # another sender holds the lease: left where it is, it comes back later
    UNVERIFIED = "unverified"  # the address is not verified: no mail, a failed result saying so
    REFUSED = "refused"  # the channel is deleted, disabled or another user's: a failed result saying so


for _outcome in Outcome:  # every outcome from 0 on the first scrape: a rate over it is 0, not absent
    EMAILS.labels(_outcome)


class Recorder:
    """Decides what a send came to and writes it, with the acknowledgement of the trigger's entries once due."""

    def __init__(self, settings: NotifierSettings, commits: ShardCommits) -> None:
        self.settings = settings
        self.commits = commits

    async def commit_batch(self, shard: int, jobs: Sequence[Job], ops: Ops, *, delete: Sequence[str] = ()) -> None:
        """Commit `ops` that settle `jobs` at once; acknowledges the entries whose last deliveries these are."""
        entries: dict[int, tuple[Entry, int]] = {}
        for job in jobs:
            entry, n = entries.get(id(job.entry), (job.entry, 0))
            entries[id(job.entry)] = (entry, n + 1)
        ack = [i for entry, n in entries.values() for i in entry.ack_for(n)]
        await self.commits[shard].commit(ops, delete=delete, ack=ack)
        if late := [i for entry, n in entries.values() for i in entry.recorded(n)]:
            await self.commits[shard].commit(nothing, ack=late)

    def decide(self, job: Job, sent: Delivered | SendFailed) -> tuple[Outcome, Ops]:
        """The outcome of one attempt and the commands that record it."""
        if isinstance(sent, Delivered):
            log.info(_event(job, "sent"), to=_to(job), kind=job.kind, attempts=job.attempt, reply=sent.reply)
            return Outcome.SENT, lambda pipe: self.result_ops(pipe, job, DeliveryStatus.SENT, None, sent=sent)
        failure = sent
        now = now_ms()
        first_failed = job.first_failed_ms if job.first_failed_ms is not None else now
        waited_s = (now - first_failed) / 1000
        s = self.settings
        retry_for_s, base_s, max_s = (
            (s.retry_for_s, s.backoff_base_s, s.backoff_max_s)
            if job.by_mail
            else (s.webhook_retry_for_s, s.webhook_backoff_base_s, s.webhook_backoff_max_s)
        )
        if not failure.permanent and waited_s < retry_for_s:
            delay = backoff_s(job.attempt, base_s, max_s)
            due_ms = now + int(delay * 1000)
            log.info(
                _event(job, "retry.scheduled"),
                kind=job.kind,
                attempts=job.attempt,
                retry_in_s=round(delay, 2),
                reason=failure.reason,
            )
            item = Retrying(
                delivery_id=job.delivery_id,
                channel_id=job.channel_id,
                fields=job.fields,
                attempts=job.attempt,
                first_failed_ms=first_failed,
                entry_id=job.entry_id,
                last_error=failure.reason,
            )

            def retry(pipe: RedisPipeline) -> None:
                due = datetime.fromtimestamp(due_ms / 1000, UTC)
                self._add(pipe, job, DeliveryStatus.RETRYING, failure.reason, job.attempt, failure, next_retry_at=due)
                RetryQueue.schedule(pipe, job.shard, item, due_ms)

            return Outcome.RETRY, retry
        reason = (
            failure.reason
            if failure.permanent
            else (f"gave up after {job.attempt} attempts in {waited_s:.0f} s; last error: {failure.reason}")
        )
        log.warning(
            _event(job, "failed"), kind=job.kind, reason=reason, attempts=job.attempt, permanent=failure.permanent
        )
        return Outcome.FAILED, lambda pipe: self.result_ops(pipe, job, DeliveryStatus.FAILED, reason, sent=failure)

    def result_ops(
        self,
        pipe: RedisPipeline,
        job: Job,
        status: DeliveryStatus,
        error: str | None,
        *,
        attempts: int | None = None,
        dead_letter: bool = True,
        sent: Delivered | SendFailed | None = None,
    ) -> None:
        """Add to `pipe`: a final result (sent or failed) and what goes with it (sent mark, or dead letter)."""
        result = self._add(pipe, job, status, error, job.attempt if attempts is None else attempts, sent)
        if status is DeliveryStatus.SENT:
            sent_key = names.notifier_sent_key(job.shard, job.delivery_id)
            pipe.set(sent_key, result.occurred_at.isoformat(), ex=SENT_TTL_S)
        elif dead_letter:
            # The commit acknowledges the job's entries with the outcome (a retried one was acknowledged before).
            letter = dead_letter_fields(
                job.fields,
                stream=Trigger.stream_of(job.shard),  # its dead letters: the shard stream's, in the shard's slot
                entry_id=job.entry_id,
                group=names.GROUP_NOTIFIER,
                consumer=self.settings.consumer_name,
                reason=(error or "failed") if job.account else f"channel {job.channel_id}: {error or 'failed'}",
                deliveries=job.attempt,
            )
            dead_letter_entry(pipe, letter, ack=False)
        if job.from_queue:  # a stream copy never gets here while the delivery waits in the queue
            RetryQueue.forget(pipe, job.shard, job.delivery_id)

    @staticmethod
    def _add(
        pipe: RedisPipeline,
        job: Job,
        status: DeliveryStatus,
        error: str | None,
        attempts: int,
        sent: Delivered | SendFailed | None,
        next_retry_at: datetime | None = None,
    ) -> NotificationResult:
        failure = sent if isinstance(sent, SendFailed) else None
        return add_result(
            pipe,
            job.shard,
            job.trigger,
            status,
            error,
            attempts,
            channel_id=job.channel_id,
            channel_kind=job.kind,
            reply=sent.reply if sent is not None else None,
            http_status=sent.http_status if sent is not None else None,
            next_retry_at=next_retry_at,
            channel_disabled=failure.disable if failure is not None else False,
        )


def _event(job: Job, name: str) -> str:
    """A log event of `job`: `email.<name>` for mail (as before channels), `delivery.<name>` for the other kinds."""
    return f"email.{name}" if job.by_mail else f"delivery.{name}"


def _to(job: Job) -> str | None:
    """The address a mail goes to (logged as before channels); None for the other kinds (whose URLs hold secrets)."""
    if job.account:
        return job.trigger.email
    return job.spec.target if job.spec is not None and job.by_mail else None
