"""One attempt at a delivery, by its channel's kind: mail through the SMTP pool, the others through their senders."""

from __future__ import annotations

import time
from typing import Protocol

import structlog

from pricealert.common.events import now_ms
from pricealert.notifier.delivered import Delivered
from pricealert.notifier.jobs import CHANNEL_UNKNOWN, Job
from pricealert.notifier.mail import render
from pricealert.notifier.metrics import SMTP_SECONDS, TRIGGER_TO_ACCEPT_SECONDS
from pricealert.notifier.sender import SendFailed, SmtpPool
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()


class ChannelSending(Protocol):
    """Sends a delivery on a webhook or Apprise channel (channelsend.ChannelSenders)."""

    async def send(self, job: Job) -> Delivered:
        """Deliver `job` or raise SendFailed."""
        ...


class Sending:
    """Sends a job on its channel: mail (inside the caller's SMTP slot), webhooks and Apprise (`channels`)."""

    def __init__(self, settings: NotifierSettings, pool: SmtpPool, channels: ChannelSending | None) -> None:
        self.settings = settings
        self.pool = pool
        self.channels = channels

    async def send(self, job: Job) -> Delivered | SendFailed:
        """Make one attempt: what the receiver answered, or why it did not take the delivery."""
        if not job.by_mail:
            return await self._send_on_channel(job)
        try:
            mail = render(job.trigger, self.settings, *self._recipient(job))
        except Exception as exc:  # a trigger that cannot be rendered never will be
            return SendFailed(f"cannot render the email: {exc}", permanent=True)
        started = time.perf_counter()
        try:
            reply = await self.pool.deliver(mail)
        except SendFailed as exc:
            return exc
        finally:
            SMTP_SECONDS.observe(time.perf_counter() - started)
        TRIGGER_TO_ACCEPT_SECONDS.observe(max(0.0, (now_ms() - job.trigger.fired_at) / 1000))
        return Delivered(reply=reply)

    @staticmethod
    def _recipient(job: Job) -> tuple[str | None, str | None]:
        """An email channel's address and delivery id (None, None: the account's address, the trigger's mail)."""
        if job.account or job.spec is None:
            return None, None
        return job.spec.target, job.delivery_id

    async def _send_on_channel(self, job: Job) -> Delivered | SendFailed:
        if job.spec is None:
            return SendFailed(CHANNEL_UNKNOWN, permanent=False)
        if self.channels is None:
            return SendFailed(f"no sender for {job.kind} channels in this process", permanent=False)
        try:
            return await self.channels.send(job)
        except SendFailed as exc:
            return exc
        except Exception as exc:  # a sender's bug must not lose the delivery: it is retried like a failure
            log.exception("delivery.sender_failed", kind=job.kind)
            return SendFailed(f"{type(exc).__name__}: {exc}", permanent=False)
