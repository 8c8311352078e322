"""POST /channels/{id}/test's other half: the notifier sends a test on the channel and pushes the outcome back; and
the verification mail of an email channel."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

from channel_delivery_testkit import SECRET, channel_settings, put
from notifier_testkit import StartNotifier, results
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.channels import ChannelKind, ChannelTestRequest
from pricealert.common.events import AccountEvent, AccountEventType, utc_now
from pricealert.devstack.smtp import MailboxServer
from pricealert.notifier.jobs import CHANNEL_FOREIGN
from pricealert.testsupport.polling import eventually
from pricealert.testsupport.webhooks import Cue, WebhookReceiver


async def ask(redis: Redis, channel_id: str, *, user_id: str = "u1", age_s: float = 0.0) -> str:
    """Append a test request as the alerts service does; returns its id."""
    request = ChannelTestRequest(
        request_id=uuid.uuid4().hex,
        channel_id=channel_id,
        user_id=user_id,
        email="ada@example.com",
        requested_at=utc_now() - timedelta(seconds=age_s),
    )
    await redis.xadd(names.CHANNEL_TESTS, request.to_fields())  # type: ignore[arg-type]
    return request.request_id


async def answer(redis: Redis, request_id: str) -> dict[str, Any]:
    """The outcome the notifier pushed (as the API waits for it: BLPOP)."""
    reply = await redis.blpop([names.channel_test_reply_key(request_id)], timeout=10)
    assert reply is not None, "no answer"
    return dict(json.loads(reply[1]))


async def test_a_webhook_test_is_signed_and_answered(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    receiver.cue = Cue(status=202)
    await put(redis, "c1", receiver.url())
    notifier(channel_settings(smtp_server.port))
    request_id = await ask(redis, "c1")
    reply_key = names.channel_test_reply_key(request_id)

    async def replied() -> bool:
        return bool(await redis.exists(reply_key))

    await eventually(replied)
    assert 0 < await redis.ttl(reply_key) <= 60  # the API may never come for it
    outcome = await answer(redis, request_id)
    assert outcome["request_id"] == request_id and outcome["channel_id"] == "c1"
    assert (outcome["delivered"], outcome["http_status"], outcome["detail"]) == (True, 202, "HTTP 202")
    assert outcome["duration_ms"] >= 0
    [hook] = receiver.requests
    assert hook.verified_by == (SECRET,) and hook.headers["webhook-id"] == f"test_{request_id}"
    assert hook.json()["type"] == "channel.test"
    await asyncio.sleep(0.2)
    assert await results(redis, retrying=True) == []  # a test is no delivery


async def test_a_failing_test_is_answered_once_and_never_retried(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    receiver.cue = Cue(status=500)
    await put(redis, "c1", receiver.url())
    await put(redis, "c4", receiver.url(), user_id="u2")
    notifier(channel_settings(smtp_server.port))
    failing, foreign, unknown = await ask(redis, "c1"), await ask(redis, "c4"), await ask(redis, "c404")

    first = await answer(redis, failing)
    assert (first["delivered"], first["http_status"], first["detail"]) == (False, 500, "HTTP 500")
    assert (await answer(redis, foreign))["detail"] == CHANNEL_FOREIGN
    assert (await answer(redis, unknown))["detail"] == "channel not found"
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 1  # the 500 is not retried; the foreign channel got nothing
    assert await redis.xpending(names.CHANNEL_TESTS, names.GROUP_NOTIFIER) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_the_account_email_and_an_email_channel_get_a_test_mail(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    await put(redis, "c6", "bob@example.com", kind=ChannelKind.EMAIL)
    notifier(channel_settings(smtp_server.port))
    account, other = await ask(redis, "email"), await ask(redis, "c6")

    for request_id in (account, other):
        outcome = await answer(redis, request_id)
        assert outcome["delivered"] is True and outcome["detail"].startswith("250")
    assert sorted(m.recipients[0] for m in smtp_server.mails) == ["ada@example.com", "bob@example.com"]
    assert all("test" in m.message["Subject"] for m in smtp_server.mails)


async def test_a_request_the_api_gave_up_on_is_acknowledged_without_a_send(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    await put(redis, "c1", receiver.url())
    stale = await ask(redis, "c1", age_s=31)
    notifier(channel_settings(smtp_server.port))
    fresh = await ask(redis, "c1")
    assert (await answer(redis, fresh))["delivered"] is True

    async def acknowledged() -> bool:
        return int((await redis.xpending(names.CHANNEL_TESTS, names.GROUP_NOTIFIER))["pending"]) == 0

    await eventually(acknowledged)
    assert not await redis.exists(names.channel_test_reply_key(stale))
    assert [r.headers["webhook-id"] for r in receiver.requests] == [f"test_{fresh}"]


async def test_an_email_channel_verification_mails_its_link(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    event = AccountEvent(
        type=AccountEventType.CHANNEL_VERIFICATION,
        event_id=uuid.uuid4().hex,
        user_id="u1",
        email="bob@example.com",
        token="ch-tok_42",
        expires_at=utc_now() + timedelta(hours=24),
        occurred_at=utc_now(),
    )
    await redis.xadd(names.ACCOUNT_EVENTS, event.to_fields())  # type: ignore[arg-type]
    notifier(channel_settings(smtp_server.port, app_url="https://alerts.example.com/"))

    async def mailed() -> bool:
        return len(smtp_server.mails) == 1

    await eventually(mailed)
    [mail] = smtp_server.mails
    assert mail.recipients == ["bob@example.com"]
    assert "https://alerts.example.com/#/channels/verify?token=ch-tok_42" in mail.text()
    assert "/auth/verify" not in mail.text() and "/#/verify" not in mail.text()
    html = mail.message.get_body(preferencelist=("html",))
    assert (
        html is not None and 'href="https://alerts.example.com/#/channels/verify?token=ch-tok_42"' in html.get_content()
    )


async def test_an_unverified_account_gets_no_test_mail(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    await redis.sadd(names.ACCOUNTS_UNVERIFIED, "u2")
    notifier(channel_settings(smtp_server.port))
    request_id = await ask(redis, "email", user_id="u2")

    outcome = await answer(redis, request_id)
    assert outcome["delivered"] is False and outcome["detail"].startswith("email_not_verified:")
    await asyncio.sleep(0.2)
    assert smtp_server.mails == []
