"""A trigger delivered on each of its channels (mail, other addresses, signed webhooks), once per channel, with one
result per attempt, its stream entry acknowledged once every delivery is settled."""

from __future__ import annotations

import asyncio

from channel_delivery_testkit import (
    SECRET,
    by_channel,
    channel_settings,
    delivery_sent_key,
    firing,
    publish,
    put,
)
from notifier_testkit import DEAD, RETRY_QUEUE, SHARD, StartNotifier, message_id, message_ids, pending, results
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook

from pricealert.common import names
from pricealert.common.channels import ChannelKind, ChannelStatus
from pricealert.devstack.smtp import MailboxServer
from pricealert.notifier.jobs import ADDRESS_NOT_VERIFIED, CHANNEL_DELETED, CHANNEL_DISABLED, CHANNEL_FOREIGN
from pricealert.testsupport.polling import eventually
from pricealert.testsupport.webhooks import Cue, WebhookReceiver


async def test_email_and_webhook_each_get_the_firing_once_and_the_entry_is_acknowledged(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    receiver.cue = Cue(status=204)
    await put(redis, "c1", receiver.url())
    notifier(channel_settings(smtp_server.port))
    await publish(redis, firing(1, "email,c1"))

    async def both_settled() -> bool:
        return len(await results(redis)) == 2 and await pending(redis) == 0

    await eventually(both_settled)
    await asyncio.sleep(0.3)  # nothing more may follow
    assert message_ids(smtp_server) == {message_id(1): 1}
    [hook] = receiver.requests
    assert hook.verified_by == (SECRET,)
    assert hook.headers["webhook-id"] == "t1"
    payload = Webhook(SECRET).verify(hook.body, hook.headers)
    assert payload["type"] == "alert.fired" and payload["firing_id"] == "t1" and payload["price"] == "100012.5"
    final = await results(redis, retrying=True)
    assert sorted((r.channel_id, r.channel_kind, r.status, r.attempts) for r in final) == [
        ("c1", "webhook", "sent", 1),
        ("email", "email", "sent", 1),
    ]
    [webhook] = by_channel(final, "c1")
    assert (webhook.reply, webhook.http_status, webhook.user_id, webhook.trigger_id) == ("HTTP 204", 204, "u1", "t1")
    [mail] = by_channel(final, "email")
    assert mail.reply is not None and mail.reply.startswith("250")
    assert await redis.exists(delivery_sent_key("t1"), delivery_sent_key("t1@c1")) == 2


async def test_a_webhook_answering_500_is_retried_then_sent_with_a_result_per_attempt(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    receiver.queue(Cue(status=500, body=b"database down"))
    await put(redis, "c1", receiver.url())
    notifier(channel_settings(smtp_server.port))
    await publish(redis, firing(1, "c1"))

    async def sent() -> bool:
        return [r.status for r in await results(redis)] == ["sent"]

    await eventually(sent)
    await asyncio.sleep(0.3)
    retrying, done = await results(redis, retrying=True)
    assert (retrying.status, retrying.attempts, retrying.http_status) == ("retrying", 1, 500)
    assert retrying.reply == "HTTP 500 database down" and retrying.error == "HTTP 500"
    assert retrying.next_retry_at is not None and retrying.next_retry_at > retrying.occurred_at
    assert (done.status, done.attempts, done.http_status, done.channel_kind) == ("sent", 2, 200, "webhook")
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["t1", "t1"]  # the receiver can dedupe
    assert smtp_server.mails == []  # no account email: the alert lists only its webhook
    assert await pending(redis) == 0 and await redis.zcard(RETRY_QUEUE) == 0


async def test_a_webhook_answering_410_fails_for_good_and_asks_for_the_channel_to_be_disabled(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    receiver.cue = Cue(status=410)
    await put(redis, "c1", receiver.url())
    notifier(channel_settings(smtp_server.port))
    await publish(redis, firing(1, "email,c1"))

    async def settled() -> bool:
        return len(await results(redis)) == 2 and await pending(redis) == 0

    await eventually(settled)
    await asyncio.sleep(0.3)
    [gone] = by_channel(await results(redis, retrying=True), "c1")
    assert (gone.status, gone.attempts, gone.http_status, gone.channel_disabled) == ("failed", 1, 410, True)
    assert len(receiver.requests) == 1 and message_ids(smtp_server) == {message_id(1): 1}
    [(_, letter)] = await redis.xrange(DEAD)
    assert letter[b"dl_reason"].startswith(b"channel c1: HTTP 410")


async def test_a_channel_missing_from_the_registry_is_retried_until_it_is_published(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    notifier(channel_settings(smtp_server.port, webhook_backoff_base_s=0.2, webhook_backoff_max_s=0.4))
    await publish(redis, firing(1, "c9"))
    retry_hash = names.notifier_retry_key(SHARD, "t1@c9")

    async def waiting() -> bool:
        return await redis.hget(retry_hash, "retry_channel_id") == b"c9"

    await eventually(waiting)
    assert await pending(redis) == 0  # the retry queue stands for the entry now
    await put(redis, "c9", receiver.url())

    async def sent() -> bool:
        return [r.status for r in await results(redis)] == ["sent"]

    await eventually(sent)
    every = await results(redis, retrying=True)
    assert every[0].status == "retrying" and every[0].channel_kind == "unknown"
    assert every[0].error is not None and every[0].error.startswith("channel not in the registry")
    assert every[-1].channel_kind == "webhook" and len(receiver.requests) == 1


async def test_deleted_disabled_foreign_and_unverified_channels_are_refused_without_an_attempt(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    await put(redis, "c2", receiver.url(), status=ChannelStatus.DELETED)
    await put(redis, "c3", receiver.url(), status=ChannelStatus.DISABLED)
    await put(redis, "c4", receiver.url(), user_id="u2")
    await put(redis, "c5", "bob@example.com", kind=ChannelKind.EMAIL, status=ChannelStatus.UNVERIFIED)
    notifier(channel_settings(smtp_server.port))
    await publish(redis, firing(1, "c2,c3,c4,c5"))

    async def settled() -> bool:
        return len(await results(redis)) == 4 and await pending(redis) == 0

    await eventually(settled)
    refused = {r.channel_id: r for r in await results(redis, retrying=True)}
    assert {k: (r.status, r.attempts, r.error) for k, r in refused.items()} == {
        "c2": ("failed", 0, CHANNEL_DELETED),
        "c3": ("failed", 0, CHANNEL_DISABLED),
        "c4": ("failed", 0, CHANNEL_FOREIGN),
        "c5": ("failed", 0, ADDRESS_NOT_VERIFIED),
    }
    assert refused["c5"].channel_kind == "email"
    assert receiver.requests == [] and smtp_server.mails == [] and await redis.xlen(DEAD) == 0


async def test_an_email_channel_gets_the_same_mail_at_its_own_address(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    await put(redis, "c6", "bob@example.com", kind=ChannelKind.EMAIL)
    notifier(channel_settings(smtp_server.port))
    await publish(redis, firing(1, "email,c6"))

    async def settled() -> bool:
        return len(await results(redis)) == 2 and await pending(redis) == 0

    await eventually(settled)
    mails = {m.recipients[0]: m for m in smtp_server.mails}
    assert sorted(mails) == ["ada@example.com", "bob@example.com"]
    other = mails["bob@example.com"].message
    assert other["To"] == "bob@example.com" and other["Message-ID"] == "<trigger.t1.c6@pricealert.localhost>"
    assert other["Subject"] == mails["ada@example.com"].message["Subject"]
    assert {(r.channel_id, r.channel_kind, r.status) for r in await results(redis)} == {
        ("email", "email", "sent"),
        ("c6", "email", "sent"),
    }


async def test_an_apprise_channel_gets_the_firing_as_a_title_and_a_body(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    await put(redis, "c7", f"json://127.0.0.1:{receiver.port}/notify", kind=ChannelKind.APPRISE)
    notifier(channel_settings(smtp_server.port))
    await publish(redis, firing(1, "c7"))

    async def sent() -> bool:
        return [r.status for r in await results(redis)] == ["sent"] and await pending(redis) == 0

    await eventually(sent)
    [got] = receiver.requests
    body = got.json()
    assert body["title"].startswith("BTCUSDT rose to 100000") and "traded at 100012.5" in body["title"]
    assert "Trade price: 100012.5" in body["message"] and "Alert id: t1" in body["message"]
    [result] = await results(redis)
    assert (result.channel_kind, result.reply, result.attempts) == ("apprise", "JSON: sent", 1)
