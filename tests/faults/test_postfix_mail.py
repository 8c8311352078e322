"""The notifier against Debian's Postfix (an instance of the test's own): mail really queued and delivered to its
Maildir; Postfix deferring (4xx) and rejecting (5xx) recipients by its own access table, and stopped for 10 s."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from e2e_stack import Stack, fire_one_alert, stack_environment
from notifier_testkit import Replica, message_id, publish_triggers, results, settings_for
from postfix_testkit import message_ids, refuses_connections, running_postfix
from redis.asyncio import Redis

from pricealert.common.events import DeliveryStatus
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.postfix import PostfixServer
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def postfix() -> Iterator[PostfixServer]:
    """A Postfix instance of this test, gone afterwards."""
    with running_postfix() as server:
        yield server


@pytest.fixture
async def replica(redis: Redis, postfix: PostfixServer) -> AsyncIterator[Replica]:
    """One notifier replica in this event loop, sending to the Postfix instance; a short deadline per attempt."""
    running = Replica(redis, settings_for(postfix.port, smtp_timeout_s=3.0, send_timeout_s=4.0))
    yield running
    await running.stop()


async def delivered(postfix: PostfixServer, n: int) -> None:
    """Wait until trigger `n`'s mail is in the Maildir."""

    async def there() -> bool:
        return message_ids(postfix)[message_id(n)] >= 1

    await eventually(there, within=20, what=f"trigger {n}'s mail in Postfix's Maildir")


@pytest.mark.e2e
async def test_an_alert_fires_and_its_mail_is_delivered_by_postfix_once(
    tmp_path: Path, redis_url: str, sqlite_url: str, postfix: PostfixServer
) -> None:
    async with FakeExchange() as exchange:
        env = stack_environment(
            tmp_path,
            redis_url=redis_url,
            database_url=sqlite_url,
            smtp_port=postfix.port,
            exchange_ws_url=exchange.ws_url,
            exchange_rest_url=exchange.rest_url,
        )
        stack = Stack(tmp_path, env)
        stack.start()
        try:
            await stack.wait_ready()
            alert = await fire_one_alert(
                stack.url,
                exchange,
                postfix,  # read like the in-house mailbox: its `mails`
                email="ada@example.com",
                symbol="BTCUSDT",
                target="70000",
                trade_price="70001.5",
            )
        finally:
            codes = await asyncio.to_thread(stack.stop)
        assert all(code in (0, -signal.SIGTERM) for code in codes.values()), stack.logs()
    alert_mails = [m for m in postfix.mails if str(m.message["Message-ID"]).startswith("<trigger.")]
    assert [str(m.message["Message-ID"]) for m in alert_mails] == [f"<trigger.{alert['id']}@pricealert.localhost>"]
    [mail] = alert_mails
    assert mail.message["To"] == "ada@example.com"
    assert mail.recipients == ["ada@example.com"]
    assert mail.message["Subject"] == "BTCUSDT rose to 70000 (above alert) - traded at 70001.5"
    assert "70001.5" in mail.text()
    assert f"by {postfix.hostname} (Postfix)" in str(mail.message["Received"])


async def test_a_deferring_postfix_is_retried_until_it_accepts_then_delivered_once(
    redis: Redis, postfix: PostfixServer, replica: Replica
) -> None:
    postfix.set_policy(defer=["^ada@"])
    await publish_triggers(redis, [1])

    async def retried() -> bool:
        return len(await results(redis, retrying=True)) >= 3

    await eventually(retried, within=20, what="three deferred attempts")
    assert not postfix.mails
    postfix.set_policy()
    await delivered(postfix, 1)
    await asyncio.sleep(1.5)  # a late second copy would be in by now
    assert message_ids(postfix) == {message_id(1): 1}
    every = await results(redis, retrying=True)
    retrying = [r for r in every if r.status is DeliveryStatus.RETRYING]
    assert retrying and all(r.reply and r.reply.startswith("450 4.2.1") for r in retrying[:3]), retrying
    assert every[-1].status is DeliveryStatus.SENT and every[-1].attempts == len(every)
    assert every[-1].reply and every[-1].reply.startswith("250")


async def test_a_rejecting_postfix_fails_the_mail_at_once_without_retry(
    redis: Redis, postfix: PostfixServer, replica: Replica
) -> None:
    postfix.set_policy(reject=["^eve@"])
    await publish_triggers(redis, [1], email="eve@example.com")
    await publish_triggers(redis, [2], email="ada@example.com")
    await delivered(postfix, 2)

    async def final() -> bool:
        return len(await results(redis)) == 2

    await eventually(final, within=20, what="both results final")
    await asyncio.sleep(1.0)  # a retry would have been written by now
    every = {r.trigger_id: r for r in await results(redis, retrying=True)}
    assert len(await results(redis, retrying=True)) == 2  # no retrying attempt at all
    failed = every["t1"]
    assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 1)
    assert failed.reply and failed.reply.startswith("550 5.1.1"), failed
    assert "Recipient rejected by policy" in failed.reply
    assert every["t2"].status is DeliveryStatus.SENT
    assert message_ids(postfix) == {message_id(2): 1}


async def test_a_stopped_postfix_gets_the_mail_once_when_it_is_back(
    redis: Redis, postfix: PostfixServer, replica: Replica
) -> None:
    await asyncio.to_thread(postfix.stop)
    assert refuses_connections(postfix.port)
    assert not postfix.processes()
    await publish_triggers(redis, [1])
    await asyncio.sleep(10)
    assert not postfix.mails
    refused = await results(redis, retrying=True)
    assert len(refused) >= 2 and all(r.status is DeliveryStatus.RETRYING for r in refused), refused
    await asyncio.to_thread(postfix.start)
    await delivered(postfix, 1)
    await asyncio.sleep(1.5)
    assert message_ids(postfix) == {message_id(1): 1}
    assert (await results(redis))[-1].status is DeliveryStatus.SENT
