"""Account mail from the account-events stream, and no alert mail to an address nobody verified."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from notifier_testkit import (
    DEAD,
    TRIGGERS,
    StartNotifier,
    lease_key,
    message_id,
    message_ids,
    publish_triggers,
    results,
    settings_for,
    trigger,
)
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pricealert.common import names
from pricealert.common.events import AccountEvent, AccountEventType, utc_now
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually

ACCOUNT_DEAD = names.dead_letter_stream(names.ACCOUNT_EVENTS)


def account_event(kind: AccountEventType, email: str = "new@example.com", **fields: object) -> AccountEvent:
    """An account event as auth appends it."""
    values: dict[str, object] = dict(
        type=kind, event_id=uuid.uuid4().hex, user_id="u1", email=email, occurred_at=utc_now()
    )
    if kind in (AccountEventType.REGISTERED, AccountEventType.VERIFICATION_RESENT):
        values.update(token="tok-en_123", expires_at=utc_now() + timedelta(hours=24))
    values.update(fields)
    return AccountEvent(**values)  # type: ignore[arg-type]


async def append(redis: Redis, *events: AccountEvent) -> None:
    """XADD account events."""
    for event in events:
        await redis.xadd(names.ACCOUNT_EVENTS, event.to_fields())  # type: ignore[arg-type]


async def account_pending(redis: Redis) -> int:
    """Entries of the account-events stream delivered to the notifier and not yet acknowledged."""
    return int((await redis.xpending(names.ACCOUNT_EVENTS, names.GROUP_NOTIFIER))["pending"])


async def test_a_registration_mails_the_verification_link_once(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    registered = account_event(AccountEventType.REGISTERED)
    await append(redis, registered, registered)  # appended twice (a retried XADD): still one mail
    notifier(settings_for(smtp_server.port, app_url="https://alerts.example.com/"))
    notifier(settings_for(smtp_server.port, consumer_name="n2", app_url="https://alerts.example.com/"))

    async def mailed_and_acknowledged() -> bool:
        return (
            len(smtp_server.mails) >= 1
            and await redis.xlen(names.ACCOUNT_EVENTS) == 2
            and (await account_pending(redis) == 0)
        )

    await eventually(mailed_and_acknowledged)
    await asyncio.sleep(0.3)
    [mail] = smtp_server.mails
    assert mail.recipients == ["new@example.com"]
    assert mail.message["Message-ID"] == f"<account.{registered.event_id}@pricealert.localhost>"
    assert mail.message["X-Pricealert-Verify-Token"] == "tok-en_123"
    assert "Verify" in mail.message["Subject"]
    # The link opens the page; the token rides in the fragment, which no server or proxy log ever sees.
    assert "https://alerts.example.com/#/verify?token=tok-en_123" in mail.text()
    assert "?token=" not in mail.text().replace("/#/verify?token=", "")
    assert 'POST https://alerts.example.com/auth/verify  {"token": "tok-en_123"}' in mail.text()  # for API users
    html = mail.message.get_body(preferencelist=("html",))
    assert html is not None and 'href="https://alerts.example.com/#/verify?token=tok-en_123"' in html.get_content()


async def test_notices_carry_no_token_and_a_verification_sends_nothing(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    await append(
        redis,
        account_event(AccountEventType.REGISTRATION_REPEATED, "owner@example.com"),
        account_event(AccountEventType.REGISTRATION_REFUSED, "asker@example.com", user_id=None, username="neo"),
        account_event(AccountEventType.VERIFIED, "owner@example.com"),
    )
    notifier(settings_for(smtp_server.port))

    async def settled() -> bool:
        return len(smtp_server.mails) == 2 and await account_pending(redis) == 0

    await eventually(settled)
    await asyncio.sleep(0.3)
    repeated, refused = sorted(smtp_server.mails, key=lambda m: m.recipients[0], reverse=True)
    assert repeated.recipients == ["owner@example.com"] and "already" in repeated.text()
    assert refused.recipients == ["asker@example.com"] and '"neo"' in refused.text()
    assert all(m.message["X-Pricealert-Verify-Token"] is None and "token" not in m.text() for m in (repeated, refused))
    assert len(smtp_server.mails) == 2


async def test_a_transient_smtp_failure_is_retried_and_a_permanent_one_dead_lettered(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    smtp_server.handler.fail_next(1, "451 4.3.0 Try again later")
    later = account_event(AccountEventType.VERIFICATION_RESENT, "later@example.com")
    await append(redis, later)
    notifier(settings_for(smtp_server.port))

    async def mailed() -> bool:
        return len(smtp_server.mails) == 1 and await account_pending(redis) == 0

    await eventually(mailed)
    smtp_server.handler.fail_next(1, "550 5.1.1 No such mailbox")
    await append(redis, account_event(AccountEventType.REGISTERED, "gone@example.com"))

    async def dead_lettered() -> bool:
        return await redis.xlen(ACCOUNT_DEAD) == 1 and await account_pending(redis) == 0

    await eventually(dead_lettered)
    [(_, dead)] = await redis.xrange(ACCOUNT_DEAD)
    assert dead[b"email"] == b"gone@example.com" and b"550" in dead[b"dl_reason"]
    assert [m.recipients for m in smtp_server.mails] == [["later@example.com"]]


async def test_no_alert_mail_to_an_unverified_address_until_it_is_verified(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    await redis.sadd(names.ACCOUNTS_UNVERIFIED, "u1")  # what auth does when u1 registers
    notifier(settings_for(smtp_server.port))
    await publish_triggers(redis, [1])

    async def one_result() -> bool:
        return len(await results(redis)) == 1

    await eventually(one_result)
    [refused] = await results(redis)
    assert (refused.trigger_id, refused.status, refused.attempts) == ("t1", "failed", 0)
    assert refused.error is not None and refused.error.startswith("email_not_verified:")
    assert smtp_server.mails == [] and await redis.xlen(DEAD) == 0  # no fault: nothing for operators
    [group] = await redis.xinfo_groups(TRIGGERS)
    assert group["pending"] == 0

    await redis.srem(names.ACCOUNTS_UNVERIFIED, "u1")  # what auth does when the address is verified
    await redis.xadd(TRIGGERS, trigger(2).to_fields())  # type: ignore[arg-type]

    async def two_results() -> bool:
        return len(await results(redis)) == 2

    await eventually(two_results)
    assert [str(m.message["Message-ID"]) for m in smtp_server.mails] == [message_id(2)]
    assert (await results(redis))[1].status == "sent"


async def test_a_failed_unverified_check_gives_the_batch_leases_back_and_the_mail_goes_out_once_it_answers(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    # A set of another type makes SMISMEMBER fail (WRONGTYPE) beside a lease script that succeeds.
    await redis.set(names.ACCOUNTS_UNVERIFIED, "not a set")
    settings = settings_for(smtp_server.port, send_timeout_s=10.0)  # leases of 15 s: far beyond this test's waits
    replica = notifier(settings)
    await publish_triggers(redis, [1])

    async def tried() -> bool:
        entries = await redis.xpending_range(TRIGGERS, names.GROUP_NOTIFIER, min="-", max="+", count=10)
        return bool(entries) and entries[0]["times_delivered"] >= 1

    await eventually(tried, alive=replica.task, tolerate=(ResponseError,))  # NOGROUP until the consumer starts
    await asyncio.sleep(0.3)
    assert not await redis.exists(lease_key(1)) and smtp_server.mails == []
    await redis.delete(names.ACCOUNTS_UNVERIFIED)

    async def sent() -> bool:
        return len(await results(redis)) == 1

    await eventually(sent, within=5, alive=replica.task)  # after the reclaim time, not after a lease's 15 s
    assert message_ids(smtp_server) == {message_id(1): 1}
