"""Delivering a batch of triggers: lease, send, and record each outcome atomically with its bookkeeping."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from pricealert.common import names
from pricealert.common.events import DeliveryStatus, Fields, NotificationResult, Trigger, now_ms, utc_now
from pricealert.common.publisher import maxlen_for
from pricealert.notifier.commit import GroupCommit, Ops
from pricealert.notifier.keys import retry_key
from pricealert.notifier.mail import render
from pricealert.notifier.retry import Retrying, RetryQueue, backoff_s
from pricealert.notifier.sender import SendFailed, SmtpPool
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()
_stdlib_log = logging.getLogger(__name__)
SENT_TTL_S = 30 * 24 * 3600  # longer than any redelivery horizon of the triggers stream
DEAD_LETTERS = names.dead_letter_stream(names.TRIGGERS)

# Per trigger (keys sent, lease, retry): 1 if sent already, 2 if a stream copy of a trigger that waits
# in the retry queue (that copy stands for it), else take the lease: 0 if taken, 3 if someone holds it.
_PRECHECK = """
local n = #KEYS / 3
local out = {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[3 * i - 2]) == 1 then
    out[i] = 1
  elseif ARGV[1 + n + i] == '0' and redis.call('EXISTS', KEYS[3 * i]) == 1 then
    out[i] = 2
  elseif redis.call('SET', KEYS[3 * i - 1], ARGV[1 + i], 'NX', 'PX', ARGV[1]) then
    out[i] = 0
  else
    out[i] = 3
  end
end
return out
"""
_LEASED, _HELD = 0, 3

# Extend our lease, or take it again if it lapsed and nobody else took it; never once the mail is sent.
_RENEW = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class Outcome(StrEnum):
    """What became of one trigger in a batch."""

    SENT = "sent"
    RETRY = "retry"  # transient failure: waits in the retry queue
    FAILED = "failed"  # permanent failure or retries exhausted: failed result and dead letter
    DUPLICATE = "duplicate"  # sent already, or already waiting in the retry queue: only acknowledged
    HELD = "held"  # another sender holds the lease: left where it is, it comes back later


@dataclass
class Job:
    """One trigger to deliver, from the triggers stream or from the retry queue."""

    trigger: Trigger
    fields: Fields
    attempt: int  # the number of the attempt about to be made
    entry_id: str  # the triggers-stream entry it came from (for the dead letter)
    ack_ids: list[str] = field(default_factory=list)  # stream entries to acknowledge with the outcome
    first_failed_ms: int | None = None
    from_queue: bool = False
    lease_token: str = ""
    leased_at: float = 0.0
    error: str | None = None  # why this attempt failed, if it did


def dead_letter_fields(job: Job, reason: str, consumer: str) -> dict[str, str]:
    """The dead-letter entry of a trigger, shaped like the shared consumer loop's dead letters."""
    return {
        **job.fields, "dl_stream": names.TRIGGERS, "dl_entry_id": job.entry_id, "dl_group": names.GROUP_NOTIFIER,
        "dl_consumer": consumer, "dl_reason": reason[:2000], "dl_deliveries": str(job.attempt),
        "dl_failed_at": str(now_ms()),
    }


class Deliverer:
    """Sends the email of each trigger once, retries transient failures later, and reports every outcome."""

    def __init__(self, redis: Redis, settings: NotifierSettings, pool: SmtpPool, queue: RetryQueue) -> None:
        self.redis = redis
        self.settings = settings
        self.pool = pool
        self.queue = queue
        self.commits = GroupCommit(redis, names.TRIGGERS, names.GROUP_NOTIFIER)
        self._precheck = redis.register_script(_PRECHECK)
        self._renew = redis.register_script(_RENEW)
        self._tokens = itertools.count()
        self._token_prefix = f"{settings.consumer_name}:{os.getpid()}:{time.monotonic_ns() % 1_000_000}"
        # Renew a lease before sending unless at least a full send plus this much of it is left.
        self._renew_after_s = min(5.0, settings.send_timeout_s) / 2

    async def deliver(self, jobs: Sequence[Job]) -> Counter[Outcome]:
        """Deliver `jobs` concurrently (bounded by the SMTP pool); raises only if Redis failed."""
        outcomes: Counter[Outcome] = Counter()
        ready = await self._lease(jobs, outcomes)
        results = await asyncio.gather(*(self._attempt(job) for job in ready), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        outcomes.update(r for r in results if isinstance(r, Outcome))
        self._log_batch(outcomes, errors, next((job.error for job in ready if job.error), None))
        if errors:
            raise errors[0]
        return outcomes

    async def _lease(self, jobs: Sequence[Job], outcomes: Counter[Outcome]) -> list[Job]:
        """One script call for the whole batch: sent already? waiting for a retry? else take the lease."""
        keys: list[str] = []
        tokens: list[str] = []
        queued: list[str] = []
        for job in jobs:
            trigger_id = job.trigger.trigger_id
            job.lease_token = f"{self._token_prefix}:{next(self._tokens)}"
            keys += [names.notifier_sent_key(trigger_id), names.notifier_lease_key(trigger_id), retry_key(trigger_id)]
            tokens.append(job.lease_token)
            queued.append("1" if job.from_queue else "0")
        states = await self._precheck(keys=keys, args=[self.settings.lease_ms, *tokens, *queued])
        leased_at = time.monotonic()
        ready: list[Job] = []
        settled: list[Job] = []
        for job, state in zip(jobs, states, strict=True):
            if state == _LEASED:
                job.leased_at = leased_at
                ready.append(job)
            elif state == _HELD:
                outcomes[Outcome.HELD] += 1
            else:
                settled.append(job)
        if settled:
            await self.commits.commit(lambda p: self._settle_duplicates(p, settled),
                                      ack=[i for job in settled for i in job.ack_ids])
            outcomes[Outcome.DUPLICATE] += len(settled)
        return ready

    @staticmethod
    def _settle_duplicates(pipe: Pipeline, settled: list[Job]) -> None:
        for job in settled:
            if job.from_queue:  # sent meanwhile through another copy of the trigger
                RetryQueue.forget(pipe, job.trigger.trigger_id)

    async def _attempt(self, job: Job) -> Outcome:
        # The slot is held until the outcome is recorded, so at most `concurrency` accepted mails are
        # ever unrecorded: that bounds the duplicates a crash can cause.
        async with self.pool.slot():
            if time.monotonic() - job.leased_at > self._renew_after_s:
                trigger_id = job.trigger.trigger_id
                renewed = await self._renew(
                    keys=[names.notifier_lease_key(trigger_id), names.notifier_sent_key(trigger_id)],
                    args=[job.lease_token, self.settings.lease_ms])
                if renewed != 1:
                    return Outcome.HELD  # someone else took over; whoever holds it settles the trigger
            failure: SendFailed | None = None
            try:
                mail = render(job.trigger, mail_from=self.settings.mail_from, app_url=self.settings.app_url)
            except Exception as exc:  # a trigger that cannot be rendered never will be
                failure = SendFailed(f"cannot render the email: {exc}", permanent=True)
            else:
                try:
                    await self.pool.deliver(mail)
                except SendFailed as exc:
                    failure = exc
            job.error = failure.reason if failure else None
            outcome, ops = self._decide(job, failure)
            await self.commits.commit(ops, delete=[names.notifier_lease_key(job.trigger.trigger_id)], ack=job.ack_ids)
        return outcome

    def _decide(self, job: Job, failure: SendFailed | None) -> tuple[Outcome, Ops]:
        trigger = job.trigger
        if failure is None:
            if _stdlib_log.isEnabledFor(logging.DEBUG):
                log.debug("email.sent", trigger_id=trigger.trigger_id, to=trigger.email, attempts=job.attempt)
            return Outcome.SENT, lambda pipe: self._record(pipe, job, DeliveryStatus.SENT, None)
        now = now_ms()
        first_failed = job.first_failed_ms if job.first_failed_ms is not None else now
        waited_s = (now - first_failed) / 1000
        if not failure.permanent and waited_s < self.settings.retry_for_s:
            delay = backoff_s(job.attempt, self.settings.backoff_base_s, self.settings.backoff_max_s)
            item = Retrying(trigger_id=trigger.trigger_id, fields=job.fields, attempts=job.attempt,
                            first_failed_ms=first_failed, entry_id=job.entry_id, last_error=failure.reason)
            return Outcome.RETRY, lambda pipe: RetryQueue.schedule(pipe, item, now + int(delay * 1000))
        reason = failure.reason if failure.permanent else (
            f"gave up after {job.attempt} attempts in {waited_s:.0f} s; last error: {failure.reason}")
        log.warning("email.failed", trigger_id=trigger.trigger_id, alert_id=trigger.alert_id, reason=reason,
                    attempts=job.attempt, permanent=failure.permanent)
        return Outcome.FAILED, lambda pipe: self._record(pipe, job, DeliveryStatus.FAILED, reason)

    def _record(self, pipe: Pipeline, job: Job, status: DeliveryStatus, error: str | None) -> None:
        trigger = job.trigger
        result = NotificationResult(trigger_id=trigger.trigger_id, alert_id=trigger.alert_id, status=status,
                                    attempts=job.attempt, error=error, occurred_at=utc_now())
        if status is DeliveryStatus.SENT:
            pipe.set(names.notifier_sent_key(trigger.trigger_id), result.occurred_at.isoformat(), ex=SENT_TTL_S)
        else:
            pipe.xadd(DEAD_LETTERS, dead_letter_fields(job, error or "failed", self.settings.consumer_name),  # type: ignore[arg-type]
                      maxlen=maxlen_for(DEAD_LETTERS), approximate=True)
        pipe.xadd(names.NOTIFICATION_RESULTS, result.to_fields(),  # type: ignore[arg-type]
                  maxlen=maxlen_for(names.NOTIFICATION_RESULTS), approximate=True)
        if job.from_queue:  # a stream copy never gets here while the trigger waits in the queue
            RetryQueue.forget(pipe, trigger.trigger_id)

    @staticmethod
    def _log_batch(outcomes: Counter[Outcome], errors: list[BaseException], failure: str | None) -> None:
        counts = {str(k): v for k, v in outcomes.items()}
        if errors or set(outcomes) - {Outcome.SENT, Outcome.DUPLICATE}:
            log.info("email.batch", **counts, failure=failure, redis_errors=len(errors),
                     redis_error=str(errors[0]) if errors else None)
        elif _stdlib_log.isEnabledFor(logging.DEBUG):
            log.debug("email.batch", **counts)

