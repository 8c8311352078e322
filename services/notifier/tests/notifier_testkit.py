"""Helpers of the notifier tests: triggers, fast settings, a selectively failing SMTP handler, waiting."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

from aiosmtpd.smtp import SMTP, Envelope, Session

from pricealert.common import names
from pricealert.common.events import Condition, DeliveryStatus, NotificationResult, Trigger
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import shard_of
from pricealert.devstack.smtp import MailboxHandler, MailboxServer
from pricealert.notifier.handlers import run
from pricealert.notifier.settings import NotifierSettings

SHARDS = 4  # the tests' shard count (settings_for): few consumers per replica, several shards all the same
SYMBOL = "BTCUSDT"
SHARD = shard_of(SYMBOL, SHARDS)  # where the triggers of SYMBOL, and all their keys, live
TRIGGERS = Trigger.stream_of(SHARD)
DEAD = names.dead_letter_stream(TRIGGERS)
RESULTS = NotificationResult.stream_of(SHARD)
RETRY_QUEUE = names.notifier_retry_queue_key(SHARD)


def trigger(n: int = 1, email: str = "ada@example.com", symbol: str = SYMBOL) -> Trigger:
    """Trigger number `n` (trigger and alert id `t<n>`) on `symbol`."""
    return Trigger(
        trigger_id=f"t{n}",
        alert_id=f"t{n}",
        user_id="u1",
        email=email,
        symbol=symbol,
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
        shards=SHARDS,
    )
    values.update(overrides)
    return NotifierSettings(**values)  # type: ignore[arg-type]


def sent_key(n: int) -> str:
    """The sent mark of trigger `n` on SYMBOL."""
    return names.notifier_sent_key(SHARD, f"t{n}")


def lease_key(n: int) -> str:
    """The lease of trigger `n` on SYMBOL."""
    return names.notifier_lease_key(SHARD, f"t{n}")


def retry_key(n: int) -> str:
    """The retry hash of trigger `n` on SYMBOL."""
    return names.notifier_retry_key(SHARD, f"t{n}")


async def publish_triggers(
    redis: RedisClient,
    numbers: range | list[int],
    email: str = "ada@example.com",
    symbol: str = SYMBOL,
    shards: int = SHARDS,
) -> None:
    """XADD the triggers with these numbers on `symbol` to its shard's stream, in one round trip."""
    stream = Trigger.stream_of(shard_of(symbol, shards))
    async with redis.pipeline(transaction=False) as pipe:
        for n in numbers:
            pipe.xadd(stream, trigger(n, email, symbol).to_fields())  # type: ignore[arg-type]
        await pipe.execute()


async def results(redis: RedisClient, shards: int = SHARDS, *, retrying: bool = False) -> list[NotificationResult]:
    """Every final notification result (sent, failed) published so far on any shard, in the order they were written;
    with `retrying`, the results of the attempts that were retried too (one per attempt)."""
    entries = []
    for shard in range(shards):
        entries += await redis.xrange(NotificationResult.stream_of(shard))
    entries.sort(key=lambda entry: tuple(int(part) for part in entry[0].split(b"-")))
    every = [NotificationResult.from_fields(fields) for _, fields in entries]
    return every if retrying else [r for r in every if r.status != DeliveryStatus.RETRYING]


async def pending(redis: RedisClient, stream: str = TRIGGERS) -> int:
    """Entries of `stream` delivered to the notifier and not yet acknowledged."""
    return int((await redis.xpending(stream, names.GROUP_NOTIFIER))["pending"])


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

    def __init__(self, redis: RedisClient, settings: NotifierSettings) -> None:
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(run(redis, settings, self.stopping))

    async def stop(self) -> None:
        """Ask it to stop and wait until it has finished what it holds."""
        self.stopping.set()
        await self.task


StartNotifier = Callable[[NotifierSettings], Replica]
