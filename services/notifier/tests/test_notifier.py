"""The notifier against a real SMTP server and a real Redis: one email per trigger, retries, give-up, outcomes."""

from __future__ import annotations

import asyncio
import threading

from aiosmtpd.smtp import SMTP, Envelope, Session
from notifier_testkit import (
    DEAD,
    RETRY_QUEUE,
    SHARDS,
    TRIGGERS,
    SelectiveHandler,
    StartNotifier,
    lease_key,
    message_id,
    message_ids,
    pending,
    publish_triggers,
    results,
    retry_key,
    selective_server,
    settings_for,
    trigger,
)
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Trigger
from pricealert.common.shards import shard_of
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually

# Symbols of the four shards (SHARDS = 4): BTCUSDT's is the testkit's SHARD.
SYMBOLS = ("BTCUSDT", "ETHUSDT", "ADAUSDT", "DOGEUSDT")


async def test_one_trigger_one_email_with_its_details(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    notifier(settings_for(smtp_server.port))
    await redis.xadd(TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]

    async def one_result() -> bool:
        return len(await results(redis)) == 1

    await eventually(one_result)
    [mail] = smtp_server.mails
    message = mail.message
    assert mail.recipients == ["ada@example.com"]
    assert message["Message-ID"] == message_id(1)
    assert "BTCUSDT" in message["Subject"] and "100000" in message["Subject"] and "above" in message["Subject"]
    body = mail.text()
    assert "100012.5" in body and "2026-05-03 11:16:44.059" in body and "moon" in body and "t1" in body
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "100012.5" in html.get_content()
    [result] = await results(redis)
    assert (result.status, result.attempts, result.error) == ("sent", 1, None)
    assert await pending(redis) == 0 and not await redis.exists(lease_key(1))


async def test_redelivered_trigger_that_was_sent_is_only_acknowledged(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    notifier(settings_for(smtp_server.port))
    await publish_triggers(redis, [1, 1, 2])  # a duplicate within one read

    async def two_mails() -> bool:
        return len(smtp_server.mails) == 2

    await eventually(two_mails)
    last = await redis.xadd(TRIGGERS, trigger(1).to_fields())  # type: ignore[arg-type]  # a late duplicate

    async def all_acknowledged() -> bool:
        [group] = await redis.xinfo_groups(TRIGGERS)
        return bool(group["last-delivered-id"] == last) and await pending(redis) == 0

    await eventually(all_acknowledged)
    await asyncio.sleep(0.3)
    assert message_ids(smtp_server) == {message_id(1): 1, message_id(2): 1}
    assert sorted(r.trigger_id for r in await results(redis)) == ["t1", "t2"]


async def test_transient_failures_then_success_send_exactly_one_mail(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    smtp_server.handler.fail_next(2, "451 4.3.0 Try again later")
    notifier(settings_for(smtp_server.port))
    await redis.xadd(TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]

    async def sent() -> bool:
        return any(r.status == "sent" for r in await results(redis))

    await eventually(sent)
    await asyncio.sleep(0.3)  # nothing more may follow
    assert message_ids(smtp_server) == {message_id(1): 1}
    [result] = await results(redis)
    assert (result.status, result.attempts) == ("sent", 3)
    assert result.reply is not None and result.reply.startswith("250")
    every = await results(redis, retrying=True)  # one result per attempt
    assert [(r.status, r.attempts) for r in every] == [("retrying", 1), ("retrying", 2), ("sent", 3)]
    assert all(r.next_retry_at is not None and r.reply == "451 4.3.0 Try again later" for r in every[:2])
    assert {(r.channel_id, r.channel_kind, r.user_id) for r in every} == {("email", "email", "u1")}
    assert await redis.zcard(RETRY_QUEUE) == 0 and not await redis.exists(retry_key(1))
    assert await pending(redis) == 0 and await redis.xlen(DEAD) == 0


async def test_permanent_failure_dead_letters_and_reports_failed(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    smtp_server.handler.fail_next(1, "550 5.1.1 No such user")
    notifier(settings_for(smtp_server.port))
    await redis.xadd(TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]

    async def dead_lettered() -> bool:
        return await redis.xlen(DEAD) == 1

    await eventually(dead_lettered)
    [result] = await results(redis)
    assert result.status == "failed" and result.attempts == 1
    assert result.error is not None and "550" in result.error
    [(_, fields)] = await redis.xrange(DEAD)
    assert b"550" in fields[b"dl_reason"] and fields[b"trigger_id"] == b"t1"
    assert smtp_server.mails == [] and await pending(redis) == 0


async def test_a_mailbox_that_keeps_refusing_does_not_hold_up_the_others(redis: Redis, notifier: StartNotifier) -> None:
    handler = SelectiveHandler(busy={"busy@example.com"})
    server = selective_server(handler).start()
    try:
        notifier(settings_for(server.port, concurrency=2))
        await publish_triggers(redis, [0], email="busy@example.com")
        await publish_triggers(redis, range(1, 41))

        async def others_sent() -> bool:
            return len([r for r in await results(redis) if r.status == "sent"]) == 40

        await eventually(others_sent)

        async def retried_on_its_own_schedule() -> bool:
            return handler.refused >= 3

        await eventually(retried_on_its_own_schedule)
        assert "t0" not in {r.trigger_id for r in await results(redis)}
        assert await redis.zscore(RETRY_QUEUE, "t0") is not None
        assert int(await redis.hget(retry_key(0), "retry_attempts") or 0) >= 1
        assert await pending(redis) == 0  # it waits in the retry queue, not in the stream
        handler.busy.clear()

        async def all_sent() -> bool:
            return len([r for r in await results(redis) if r.status == "sent"]) == 41

        await eventually(all_sent)
        [late] = [r for r in await results(redis) if r.trigger_id == "t0"]
        assert late.attempts == handler.refused + 1
        assert message_ids(server) == {message_id(n): 1 for n in range(41)}
    finally:
        server.stop()


async def test_transient_failures_are_given_up_after_the_retry_period(redis: Redis, notifier: StartNotifier) -> None:
    handler = SelectiveHandler(busy={"ada@example.com"})
    server = selective_server(handler).start()
    try:
        notifier(settings_for(server.port, retry_for_s=0.6))
        await redis.xadd(TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]

        async def dead_lettered() -> bool:
            return await redis.xlen(DEAD) == 1

        await eventually(dead_lettered)
        [result] = await results(redis)
        assert result.status == "failed" and result.attempts >= 3 and result.attempts == handler.refused
        assert result.error is not None and "gave up" in result.error and "451" in result.error
        [(_, fields)] = await redis.xrange(DEAD)
        assert b"gave up" in fields[b"dl_reason"] and fields[b"trigger_id"] == b"t1"
        assert await redis.zcard(RETRY_QUEUE) == 0
        assert not await redis.exists(retry_key(1))
        assert server.mails == []
    finally:
        server.stop()


async def test_a_scheduled_retry_survives_a_restart_of_the_notifier(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    smtp_server.handler.fail_next(1, "421 4.3.2 Service shutting down")
    first = notifier(settings_for(smtp_server.port, backoff_base_s=2.0, backoff_max_s=2.0))
    await redis.xadd(TRIGGERS, trigger().to_fields())  # type: ignore[arg-type]

    async def scheduled() -> bool:
        return await redis.zscore(RETRY_QUEUE, "t1") is not None

    await eventually(scheduled)
    await first.stop()
    assert await results(redis) == [] and await pending(redis) == 0  # only the retry queue holds it now
    notifier(settings_for(smtp_server.port, consumer_name="n2"))

    async def sent() -> bool:
        return len(await results(redis)) == 1

    await eventually(sent)
    [result] = await results(redis)
    assert (result.status, result.attempts) == ("sent", 2)
    assert message_ids(smtp_server) == {message_id(1): 1}


async def test_mails_wait_while_the_smtp_server_is_down_and_go_out_when_it_returns(
    redis: Redis, notifier: StartNotifier
) -> None:
    server = MailboxServer().start()
    notifier(settings_for(server.port))
    await publish_triggers(redis, range(5))

    async def first_five() -> bool:
        return len(server.mails) == 5

    await eventually(first_five)
    server.stop()
    try:
        await publish_triggers(redis, range(5, 25))

        async def all_waiting() -> bool:
            return await redis.zcard(RETRY_QUEUE) == 20

        await eventually(all_waiting)
        await asyncio.sleep(1.0)  # several retries meet the closed port
        assert len(await results(redis)) == 5
        server.start()  # the same port again

        async def all_sent() -> bool:
            return len([r for r in await results(redis) if r.status == "sent"]) == 25

        await eventually(all_sent, within=15)
        assert message_ids(server) == {message_id(n): 1 for n in range(25)}
        assert all(r.attempts > 1 for r in await results(redis) if r.trigger_id not in {f"t{n}" for n in range(5)})
    finally:
        server.stop()


async def test_three_replicas_mail_each_trigger_exactly_once(redis: Redis, notifier: StartNotifier) -> None:
    # A slow server and a reclaim time shorter than a batch makes replicas take over each other's
    # entries while they are being sent; some transient failures send triggers through the retry queue.
    handler = SelectiveHandler(data_delay_s=0.02)
    server = selective_server(handler).start()
    handler.fail_next(15, "451 4.3.0 Try again later")
    try:
        for name in ("n1", "n2", "n3"):
            notifier(settings_for(server.port, consumer_name=name, reclaim_idle_ms=100, concurrency=2))
        for index, symbol in enumerate(SYMBOLS):  # every shard's stream, shared by the three replicas
            await publish_triggers(redis, range(index * 75, (index + 1) * 75), symbol=symbol)
        streams = [Trigger.stream_of(shard_of(symbol, SHARDS)) for symbol in SYMBOLS]
        assert len(set(streams)) == SHARDS

        async def all_settled() -> bool:
            waiting = [await pending(redis, stream) for stream in streams]
            return len(await results(redis)) >= 300 and waiting == [0] * SHARDS

        await eventually(all_settled, within=15)
        await asyncio.sleep(0.3)
        assert message_ids(server) == {message_id(n): 1 for n in range(300)}
        outcomes = await results(redis)
        assert sorted(r.trigger_id for r in outcomes) == sorted(f"t{n}" for n in range(300))
        assert {r.status for r in outcomes} == {"sent"}
        assert sum(r.attempts > 1 for r in outcomes) >= 1
        for shard in range(SHARDS):
            assert await redis.zcard(names.notifier_retry_queue_key(shard)) == 0
            assert await redis.xlen(names.dead_letter_stream(Trigger.stream_of(shard))) == 0
    finally:
        server.stop()


async def test_malformed_trigger_is_dead_lettered_without_blocking_the_rest(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    notifier(settings_for(smtp_server.port))
    await redis.xadd(TRIGGERS, {"trigger_id": "broken"})
    await publish_triggers(redis, [1])

    async def settled() -> bool:
        return await redis.xlen(DEAD) == 1 and len(await results(redis)) == 1

    await eventually(settled)
    assert message_ids(smtp_server) == {message_id(1): 1}
    assert await pending(redis) == 0


class SlowMailbox(SelectiveHandler):
    """Holds the DATA of mails to slow@example.com until released; the others go through at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()  # set from the test's loop, waited on in the server's thread
        self.accepted_while_held: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Hold the slow mailbox's mail; note the others accepted meanwhile."""
        if "slow@example.com" in envelope.rcpt_tos:
            await asyncio.to_thread(self.release.wait, 30)
        elif not self.release.is_set():
            self.accepted_while_held.append(envelope.rcpt_tos[0])
        return await super().handle_DATA(server, session, envelope)


async def test_a_slow_mail_does_not_hold_up_the_triggers_read_after_it(redis: Redis, notifier: StartNotifier) -> None:
    handler = SlowMailbox()
    server = selective_server(handler).start()
    try:
        notifier(settings_for(server.port, concurrency=4, send_timeout_s=20.0))
        await publish_triggers(redis, [0], email="slow@example.com")

        async def slow_one_in_data() -> bool:
            return await redis.exists(lease_key(0)) == 1

        await eventually(slow_one_in_data)
        await asyncio.sleep(0.2)  # a notifier reading batch by batch is now inside the slow one's batch
        await publish_triggers(redis, range(1, 6))

        async def others_sent_while_it_is_held() -> bool:
            return len(handler.accepted_while_held) == 5

        await eventually(others_sent_while_it_is_held)
        handler.release.set()

        async def all_sent() -> bool:
            return len([r for r in await results(redis) if r.status == "sent"]) == 6

        await eventually(all_sent)
        assert message_ids(server) == {message_id(n): 1 for n in range(6)}
    finally:
        handler.release.set()
        server.stop()
