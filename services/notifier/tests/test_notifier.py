"""The notifier against a real SMTP server and a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Condition, NotificationResult, Trigger
from pricealert.devstack.smtp import MailboxServer
from pricealert.notifier.settings import NotifierSettings
from pricealert.notifier.worker import run

Running = Callable[[NotifierSettings], Awaitable[None]]


def trigger(n: int = 1, email: str = "ada@example.com") -> Trigger:
    return Trigger(
        trigger_id=f"t{n}", alert_id=f"t{n}", user_id="u1", email=email, symbol="BTCUSDT",
        condition=Condition.ABOVE, target_price=Decimal("100000"), name="moon", price=Decimal("100012.50000000"),
        trade_id=42, exchange_time=1_777_807_004_059, tick_received_at=1_777_807_004_070, fired_at=1_777_807_004_071,
    )


def settings_for(smtp: MailboxServer, **overrides: object) -> NotifierSettings:
    values: dict[str, object] = dict(smtp_port=smtp.port, reclaim_idle_ms=150, consumer_name="n1",
                                     max_deliveries=5, app_url="http://localhost:8000")
    values.update(overrides)
    return NotifierSettings(**values)  # type: ignore[arg-type]


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def notifier(redis: Redis) -> AsyncIterator[Callable[[NotifierSettings], None]]:
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start(settings: NotifierSettings) -> None:
        tasks.append(asyncio.create_task(run(redis, settings, stop)))

    yield start
    stop.set()
    await asyncio.gather(*tasks)


async def results(redis: Redis) -> list[NotificationResult]:
    return [NotificationResult.from_fields(f) for _, f in await redis.xrange(names.NOTIFICATION_RESULTS)]


async def test_one_trigger_one_email_with_its_details(redis: Redis, smtp_server: MailboxServer, notifier) -> None:  # type: ignore[no-untyped-def]
    notifier(settings_for(smtp_server))
    await redis.xadd(names.TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]

    async def one_result() -> bool:
        return len(await results(redis)) == 1

    await eventually(one_result)
    [mail] = smtp_server.mails
    message = mail.message
    assert mail.recipients == ["ada@example.com"]
    assert message["Message-ID"] == "<trigger.t1@pricealert.localhost>"
    assert "BTCUSDT" in message["Subject"] and "100000" in message["Subject"] and "above" in message["Subject"]
    body = mail.text()
    assert "100012.5" in body and "2026-05-03 11:16:44.059" in body and "moon" in body and "t1" in body
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "100012.5" in html.get_content()
    [result] = await results(redis)
    assert (result.status, result.attempts, result.error) == ("sent", 1, None)


async def test_redelivered_trigger_that_was_sent_is_only_acknowledged(
        redis: Redis, smtp_server: MailboxServer, notifier) -> None:  # type: ignore[no-untyped-def]
    notifier(settings_for(smtp_server))
    await redis.xadd(names.TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]
    await redis.xadd(names.TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]
    await redis.xadd(names.TRIGGERS, trigger(2).to_fields())  # type: ignore[arg-type]

    async def second_mail() -> bool:
        return len(smtp_server.mails) == 2 and (await redis.xpending(names.TRIGGERS, "notifier"))["pending"] == 0

    await eventually(second_mail)
    await asyncio.sleep(0.3)
    assert sorted(m.message["Message-ID"] for m in smtp_server.mails) == [
        "<trigger.t1@pricealert.localhost>", "<trigger.t2@pricealert.localhost>"]


async def test_transient_failures_then_success_send_exactly_one_mail(
        redis: Redis, smtp_server: MailboxServer, notifier) -> None:  # type: ignore[no-untyped-def]
    smtp_server.handler.fail_next(2, "451 4.3.0 Try again later")
    notifier(settings_for(smtp_server))
    await redis.xadd(names.TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]

    async def sent() -> bool:
        return any(r.status == "sent" for r in await results(redis))

    await eventually(sent)
    assert len(smtp_server.mails) == 1
    [result] = await results(redis)
    assert result.attempts == 3


async def test_permanent_failure_dead_letters_and_reports_failed(
        redis: Redis, smtp_server: MailboxServer, notifier) -> None:  # type: ignore[no-untyped-def]
    smtp_server.handler.fail_next(1, "550 5.1.1 No such user")
    notifier(settings_for(smtp_server))
    await redis.xadd(names.TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]
    dead = names.dead_letter_stream(names.TRIGGERS)

    async def dead_lettered() -> bool:
        return await redis.xlen(dead) == 1

    await eventually(dead_lettered)
    [result] = await results(redis)
    assert result.status == "failed" and result.error is not None and "550" in result.error
    [(_, fields)] = await redis.xrange(dead)
    assert b"550" in fields[b"dl_reason"] and fields[b"trigger_id"] == b"t1"
    assert smtp_server.mails == []


async def test_mails_wait_while_the_smtp_server_is_down_and_go_out_when_it_returns(
        redis: Redis, notifier) -> None:  # type: ignore[no-untyped-def]
    server = MailboxServer()
    notifier(settings_for(server, smtp_timeout_s=1.0))
    for n in range(5):
        await redis.xadd(names.TRIGGERS, trigger(n).to_fields())  # type: ignore[arg-type]
    await asyncio.sleep(0.5)  # every attempt so far met a closed port
    assert await results(redis) == []
    server.start()
    try:
        async def all_sent() -> bool:
            return len([r for r in await results(redis) if r.status == "sent"]) == 5

        await eventually(all_sent, within=20)
        assert len(server.mails) == 5
    finally:
        server.stop()
