"""Account mail: verification links and registration notices from the account-events stream, one mail per event.

Stream in: pricealert:{auth}:account-events (group notifier). Streams out: none; a mail that keeps failing
ends in pricealert:{auth}:account-events:dead through the shared consumer loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, PermanentError, Received, StreamConsumer
from pricealert.common.events import AccountEvent
from pricealert.common.redisconn import RedisClient
from pricealert.notifier.delivery import SENT_TTL_S
from pricealert.notifier.lease import Leases, LeaseState
from pricealert.notifier.mail import needs_mail, render_account
from pricealert.notifier.metrics import ACCOUNT_EMAILS
from pricealert.notifier.sender import SendFailed, SmtpPool
from pricealert.notifier.settings import NotifierSettings

log = structlog.get_logger()


class LeaseHeld(Exception):
    """Another replica is sending this event's mail: the entry stays pending and comes back later."""


class AccountMailer:
    """Sends the mail each account event calls for, at most once per event id (sent mark plus lease)."""

    def __init__(self, redis: RedisClient, settings: NotifierSettings, pool: SmtpPool, service: str) -> None:
        self.redis = redis
        self.settings = settings
        self.pool = pool
        self.service = service
        self.leases = Leases(redis, f"{settings.consumer_name}:accounts", settings.lease_ms)

    async def handle_batch(self, messages: Sequence[Received[AccountEvent]]) -> None:
        """Mail every event of the batch at once; raise the first failure (the loop retries entries one by one)."""
        events = [m.event for m in messages]
        outcomes = await asyncio.gather(*(self.mail(e) for e in events if needs_mail(e)), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def mail(self, event: AccountEvent) -> None:
        """Send one event's mail unless it was sent already; raises when it must be tried again (or never)."""
        with structlog.contextvars.bound_contextvars(event_id=event.event_id, user_id=event.user_id):
            try:
                mail = render_account(event, mail_from=self.settings.mail_from, app_url=self.settings.app_url)
            except Exception as exc:
                raise PermanentError(f"cannot render the email: {exc}") from exc
            sent_key = names.notifier_account_mail_sent_key(event.event_id)
            lease_key = names.notifier_account_mail_lease_key(event.event_id)
            token = self.leases.new_token()
            state = await self.leases.take_one(sent_key, lease_key, token)
            if state is LeaseState.SENT:
                ACCOUNT_EMAILS.labels(event.type.value, "duplicate").inc()
                return
            if state is LeaseState.HELD:
                ACCOUNT_EMAILS.labels(event.type.value, "held").inc()
                raise LeaseHeld(f"another replica is sending the mail of {event.event_id}")
            try:
                await self.pool.send(mail)
            except SendFailed as exc:
                await self.leases.release(lease_key, token)
                ACCOUNT_EMAILS.labels(event.type.value, "failed" if exc.permanent else "retry").inc()
                log.warning("account_email.failed", type=event.type.value, reason=exc.reason, permanent=exc.permanent)
                if exc.permanent:
                    raise PermanentError(exc.reason) from exc
                raise
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(sent_key, "1", ex=SENT_TTL_S)
                pipe.delete(lease_key)
                await pipe.execute()
            ACCOUNT_EMAILS.labels(event.type.value, "sent").inc()
            log.info("account_email.sent", type=event.type.value)

    def consumer(self) -> StreamConsumer:
        """The consumer of the account-events stream in the notifier's group (acks after each mail)."""
        options = ConsumerOptions(
            stream=names.ACCOUNT_EVENTS,
            group=names.GROUP_NOTIFIER,
            consumer=self.settings.consumer_name,
            service=self.service,
            batch_size=self.settings.concurrency,
            reclaim_idle_ms=self.settings.reclaim_idle_ms,
            max_deliveries=self.settings.max_deliveries,
        )
        return StreamConsumer(self.redis, options, self.handle_batch, event=AccountEvent)
