"""Delivering triggers on their channels: lease, send, and record each attempt atomically with its bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

import structlog

from pricealert.common import names
from pricealert.common.channels import get_channels
from pricealert.common.events import DeliveryStatus, Trigger
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient, RedisPipeline
from pricealert.notifier.commit import Ops, ShardCommits, nothing
from pricealert.notifier.jobs import ADDRESS_NOT_VERIFIED, NOT_VERIFIED, Entry, Job, refusal
from pricealert.notifier.lease import Leases, LeaseState
from pricealert.notifier.metrics import (
    DELIVERIES,
    EMAILS,
    IN_FLIGHT,
    RECORD_RETRIES,
)
from pricealert.notifier.outcomes import SENT_TTL_S, Outcome, Recorder
from pricealert.notifier.retry import RetryQueue
from pricealert.notifier.rooms import Rooms
from pricealert.notifier.sender import SendFailed, SmtpPool
from pricealert.notifier.sending import ChannelSending, Sending
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()
_stdlib_log = logging.getLogger(__name__)


class Deliverer:
    """Sends each trigger on each of its channels once, retries transient failures later, reports every attempt.

    Deliveries are handed over with `submit`, which returns as soon as they are leased and under way: the caller
    reads the next entries while these are being sent, so a delivery never waits for a slower one. Mail and the
    other channels have a room each for the deliveries in flight, so webhooks never hold mail up (nor SMTP slots).
    """

    def __init__(
        self,
        redis: RedisClient,
        settings: NotifierSettings,
        pool: SmtpPool,
        queue: RetryQueue,
        max_in_flight: int,
        channels: ChannelSending | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.pool = pool
        self.queue = queue
        self.commits = ShardCommits(redis, Trigger.stream_of, names.GROUP_NOTIFIER)
        self.leases = Leases(redis, settings.consumer_name, settings.lease_ms)
        self.recorder = Recorder(settings, self.commits)
        self.sending = Sending(settings, pool, channels)
        self.rooms = Rooms(settings, max_in_flight)
        self._in_flight: set[asyncio.Task[Outcome]] = set()
        # Renew a lease before sending unless at least a full send plus this much of it is left.
        self._renew_after_s = min(5.0, settings.send_timeout_s) / 2

    async def submit(self, jobs: Sequence[Job]) -> list[asyncio.Task[Outcome]]:
        """Lease `jobs` and start sending them, waiting only for room among the deliveries in flight."""
        return [task for _, task in await self._submit(jobs)]

    async def _submit(self, jobs: Sequence[Job]) -> list[tuple[Job, asyncio.Task[Outcome]]]:
        tasks: list[tuple[Job, asyncio.Task[Outcome]]] = []
        ready = await self._lease(jobs)
        saturated: set[str] = set()
        # Mail first: a batch's webhooks waiting for their room never keep its mails from theirs.
        for job in [j for j in ready if j.by_mail] + [j for j in ready if not j.by_mail]:
            room, busy = await self.rooms.take(job, saturated)
            task = asyncio.create_task(self._attempt(job, busy))
            self._in_flight.add(task)
            IN_FLIGHT.inc()
            task.add_done_callback(partial(self._finished, room))
            tasks.append((job, task))
        return tasks

    async def deliver(self, jobs: Sequence[Job]) -> Counter[Outcome]:
        """Deliver `jobs` and wait for the outcome of every mail (webhooks and Apprise notifications, which may take
        their receivers' time, run on: a retry loop never keeps mail waiting for them); raises the first Redis
        failure, if any."""
        tasks = await self._submit(jobs)
        results = await asyncio.gather(*(t for job, t in tasks if job.by_mail), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return Counter(r for r in results if isinstance(r, Outcome))

    async def drain(self) -> None:
        """Wait until every delivery in flight is settled (on shutdown)."""
        if self._in_flight:
            log.info("delivery.draining", in_flight=len(self._in_flight))
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _finished(self, room: asyncio.Semaphore | None, task: asyncio.Task[Outcome]) -> None:
        self._in_flight.discard(task)
        if room is not None:
            room.release()
        IN_FLIGHT.dec()
        if not task.cancelled() and task.exception() is not None:
            # Its entry stays pending (or its retry stays claimed) and comes back after the reclaim time.
            log.warning("delivery.unsettled", error=f"{type(task.exception()).__name__}: {task.exception()}")

    async def _lease(self, jobs: Sequence[Job]) -> list[Job]:
        """_lease_shard per shard of the batch (there is one: a batch comes from one shard's stream or queue)."""
        shards = sorted({job.shard for job in jobs})
        return [ready for k in shards for ready in await self._lease_shard(k, [j for j in jobs if j.shard == k])]

    async def _lease_shard(self, shard: int, jobs: list[Job]) -> list[Job]:
        """One script call for the shard's jobs (sent already? waiting for a retry? else take the lease), and one
        HMGET of the registry beside it for the channels other than the account email."""
        for job in jobs:
            job.lease_token = self.leases.new_token()
        states = await self._take(shard, jobs)
        leased_at = time.monotonic()
        ready: list[Job] = []
        settled: list[Job] = []
        refused: list[tuple[Job, str]] = []
        for job, state in zip(jobs, states, strict=True):
            if state is LeaseState.LEASED:
                job.leased_at = leased_at
                reason = None if job.account else refusal(job)
                if reason is None:
                    ready.append(job)
                else:
                    refused.append((job, reason))
            elif state is LeaseState.HELD:  # left pending: it comes back after the reclaim time
                count(job, Outcome.HELD)
                _debug("delivery.held", job)
            elif state is LeaseState.UNVERIFIED:
                refused.append((job, NOT_VERIFIED))
            else:
                settled.append(job)
        if refused:
            await self._refuse(shard, refused)
        if settled:
            await self.recorder.commit_batch(shard, settled, partial(self._settle_duplicates, settled=settled))
            for job in settled:
                count(job, Outcome.DUPLICATE)
                _debug("delivery.duplicate", job)
        return ready

    async def _take(self, shard: int, jobs: list[Job]) -> list[LeaseState]:
        """The lease states of `jobs`, with each channel job's spec read from the registry at the same time."""
        take = self.leases.take(
            shard,
            [job.delivery_id for job in jobs],
            [job.lease_token for job in jobs],
            [job.from_queue for job in jobs],
            [job.trigger.user_id if job.account else None for job in jobs],
        )
        channel_ids = sorted({job.channel_id for job in jobs if not job.account})
        if not channel_ids:
            return await take
        replies: tuple[Any, Any] = await asyncio.gather(
            take, get_channels(self.redis, channel_ids), return_exceptions=True
        )
        states, specs = replies
        if isinstance(states, BaseException):
            raise states
        if isinstance(specs, BaseException):
            # Leases kept for a failed batch would hold its deliveries up until they lapse: give them back.
            taken = [job for job, state in zip(jobs, states, strict=True) if state is LeaseState.LEASED]
            await asyncio.gather(
                *(self.leases.release(names.notifier_lease_key(shard, j.delivery_id), j.lease_token) for j in taken),
                return_exceptions=True,
            )
            raise specs
        for job in jobs:
            if not job.account:
                job.spec = specs.get(job.channel_id)
        return list(states)

    async def _refuse(self, shard: int, refused: list[tuple[Job, str]]) -> None:
        """Record "failed" and why for each, without a retry or a dead letter: no attempt was made, it is no fault."""

        def ops(pipe: RedisPipeline) -> None:
            for job, reason in refused:
                self.recorder.result_ops(pipe, job, DeliveryStatus.FAILED, reason, attempts=0, dead_letter=False)

        leases = [names.notifier_lease_key(shard, job.delivery_id) for job, _ in refused]  # taken by the check
        await self.recorder.commit_batch(shard, [job for job, _ in refused], ops, delete=leases)
        for job, reason in refused:
            count(job, Outcome.UNVERIFIED if reason in (NOT_VERIFIED, ADDRESS_NOT_VERIFIED) else Outcome.REFUSED)
            log.info(
                "delivery.refused",
                alert_id=job.trigger.alert_id,
                trigger_id=job.trigger.trigger_id,
                channel_id=job.channel_id,
                user_id=job.trigger.user_id,
                reason=reason.partition(":")[0],
            )

    @staticmethod
    def _settle_duplicates(pipe: RedisPipeline, settled: list[Job]) -> None:
        for job in settled:
            if job.from_queue:  # sent meanwhile through another copy of the trigger
                RetryQueue.forget(pipe, job.shard, job.delivery_id)

    async def _attempt(self, job: Job, busy: SendFailed | None = None) -> Outcome:
        trigger = job.trigger
        with structlog.contextvars.bound_contextvars(
            alert_id=trigger.alert_id, trigger_id=trigger.trigger_id, channel_id=job.channel_id
        ):
            if busy is not None:
                outcome, ops = self.recorder.decide(job, busy)
                await self._record(job, ops)
                count(job, outcome)
                return outcome
            if not job.by_mail:
                return await self._attempt_now(job)
            # The slot is held until the outcome is recorded, so at most `concurrency` accepted mails are
            # ever unrecorded: that bounds the duplicates a crash can cause.
            async with self.pool.slot():
                return await self._attempt_now(job)

    async def _attempt_now(self, job: Job) -> Outcome:
        renewed_at = time.monotonic()
        renew = renewed_at - job.leased_at > self._renew_after_s
        if renew and not await self.leases.renew(job.shard, job.delivery_id, job.lease_token):
            count(job, Outcome.HELD)
            _debug("delivery.held", job)
            return Outcome.HELD  # someone else took over; whoever holds it settles the delivery
        if renew:
            job.leased_at = renewed_at
        sent = await self.sending.send(job)
        outcome, ops = self.recorder.decide(job, sent)
        await self._record(job, ops)
        count(job, outcome)
        return outcome

    async def _record(self, job: Job, ops: Ops) -> None:
        """Record the outcome; if Redis fails, keep trying while the lease holds rather than send again, extending
        the lease while Redis answers (at maxmemory it refuses the record but extends the lease).

        The commit acknowledges the trigger's stream entries if this is the last of its deliveries to be recorded;
        if another one is recorded meanwhile, whichever is recorded last acknowledges them just after."""
        lease_s = self.settings.lease_ms / 1000
        pause = 0.05
        ack = job.entry.ack_for(1)
        while True:
            try:
                await self.commits[job.shard].commit(
                    ops, delete=[names.notifier_lease_key(job.shard, job.delivery_id)], ack=ack
                )
                break
            except TRANSIENT_REDIS_ERRORS as exc:
                if time.monotonic() - job.leased_at > lease_s / 2:
                    await self._keep_lease(job)
                if time.monotonic() + pause > job.leased_at + lease_s:
                    raise
                RECORD_RETRIES.inc()
                log.warning("delivery.record.retrying", error=f"{type(exc).__name__}: {exc}", retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(1.0, lease_s / 4, pause * 2)  # a few tries per half lease: it is extended in time
        if late := job.entry.recorded(1):
            await self.commits[job.shard].commit(nothing, ack=late)

    async def _keep_lease(self, job: Job) -> None:
        """Extend the lease of a delivery whose outcome waits to be recorded, if Redis answers and it is still ours."""
        renewed_at = time.monotonic()
        with contextlib.suppress(*TRANSIENT_REDIS_ERRORS):
            if await self.leases.renew(job.shard, job.delivery_id, job.lease_token):
                job.leased_at = renewed_at


def count(job: Job, outcome: Outcome, n: int = 1) -> None:
    """Count a settled delivery: mail in EMAILS (as before channels), the other kinds in DELIVERIES."""
    if job.by_mail:
        EMAILS.labels(outcome).inc(n)
    else:
        DELIVERIES.labels(job.kind, outcome).inc(n)


def _debug(event: str, job: Job) -> None:
    if _stdlib_log.isEnabledFor(logging.DEBUG):
        log.debug(event, alert_id=job.trigger.alert_id, trigger_id=job.trigger.trigger_id, channel_id=job.channel_id)


__all__ = ["SENT_TTL_S", "ChannelSending", "Deliverer", "Entry", "Job", "Outcome"]
