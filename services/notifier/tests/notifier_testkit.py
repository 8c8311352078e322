"""Helpers of the notifier tests: triggers, fast settings, a selectively failing SMTP handler, waiting."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

from aiosmtpd.smtp import SMTP, Envelope, Session
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Condition, NotificationResult, Trigger
from pricealert.devstack.smtp import MailboxHandler, MailboxServer
from pricealert.notifier.handlers import run
from pricealert.notifier.settings import NotifierSettings


def trigger(n: int = 1, email: str = "ada@example.com") -> Trigger:
    """Trigger number `n` (trigger and alert id `t<n>`)."""
    return Trigger(
        trigger_id=f"t{n}",
        alert_id=f"t{n}",
        user_id="u1",
        email=email,
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal("100000"),
        name="moon",
        price=Decimal("100012.50000000"),
        trade_id=42,
        exchange_time=1_777_807_004_059,
        tick_received_at=1_777_807_004_070,
        fired_at=1_777_807_004_071,
    )


def message_id(n: int) -> str:
    """The Message-ID of trigger `n`'s email under the default MAIL_FROM."""
    return f"<trigger.t{n}@pricealert.localhost>"


def settings_for(port: int, **overrides: object) -> NotifierSettings:
    """Settings for a test: quick reclaims and a retry schedule in tens of milliseconds."""
    values: dict[str, object] = dict(
        smtp_port=port,
        consumer_name="n1",
        app_url="http://localhost:8000",
        reclaim_idle_ms=300,
        smtp_timeout_s=1.0,
        send_timeout_s=2.0,
        backoff_base_s=0.05,
        backoff_max_s=0.3,
        concurrency=4,
    )
    values.update(overrides)
    return NotifierSettings(**values)  # type: ignore[arg-type]


async def publish_triggers(redis: Redis, numbers: range | list[int], email: str = "ada@example.com") -> None:
    """XADD the triggers with these numbers in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for n in numbers:
            pipe.xadd(names.TRIGGERS, trigger(n, email).to_fields())  # type: ignore[arg-type]
        await pipe.execute()


async def results(redis: Redis) -> list[NotificationResult]:
    """Every notification result published so far."""
    return [NotificationResult.from_fields(f) for _, f in await redis.xrange(names.NOTIFICATION_RESULTS)]


def message_ids(server: MailboxServer) -> Counter[str]:
    """How often each Message-ID reached the SMTP server."""
    return Counter(str(m.message["Message-ID"]) for m in list(server.mails))


class SelectiveHandler(MailboxHandler):
    """A MailboxHandler that also answers RCPT for chosen recipients with a transient refusal, and can be slow."""

    def __init__(self, busy: set[str] | None = None, data_delay_s: float = 0.0) -> None:
        super().__init__()
        self.busy = busy if busy is not None else set()
        self.data_delay_s = data_delay_s
        self.refused = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """Refuse busy mailboxes for now, accept the rest."""
        if address in self.busy:
            self.refused += 1
            return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Accept (after the configured delay) or fail as told."""
        if self.data_delay_s:
            await asyncio.sleep(self.data_delay_s)
        return await super().handle_DATA(server, session, envelope)


def selective_server(handler: SelectiveHandler, port: int | None = None) -> MailboxServer:
    """A MailboxServer (not started) that uses `handler`."""
    server = MailboxServer(port=port)
    server.handler = handler
    return server


class Replica:
    """One notifier `run(...)` task in the test's event loop."""

    def __init__(self, redis: Redis, settings: NotifierSettings) -> None:
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(run(redis, settings, self.stopping))

    async def stop(self) -> None:
        """Ask it to stop and wait until it has finished what it holds."""
        self.stopping.set()
        await self.task


StartNotifier = Callable[[NotifierSettings], Replica]
