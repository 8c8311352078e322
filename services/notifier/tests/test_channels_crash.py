"""Each (firing, channel) delivered once through redeliveries and replicas: sent marks and leases are per delivery."""

from __future__ import annotations

import asyncio
from collections import Counter

from channel_delivery_testkit import by_channel, channel_settings, delivery_sent_key, firing, publish, put
from notifier_testkit import SHARD, TRIGGERS, StartNotifier, message_id, message_ids, pending, results
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually
from pricealert.testsupport.webhooks import WebhookReceiver


async def test_an_entry_delivered_again_sends_neither_the_mail_nor_the_webhook_twice(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    await put(redis, "c1", receiver.url())
    # Another sender holds the webhook's lease (a replica that died mid-send): the mail goes, the webhook is held,
    # so the entry stays pending and is delivered again; once the lease lapses, the mail is a duplicate.
    await redis.set(names.notifier_lease_key(SHARD, "t1@c1"), "dead-replica", px=1500)
    notifier(channel_settings(smtp_server.port))
    await publish(redis, firing(1, "email,c1"))

    async def mailed_and_still_pending() -> bool:
        return len(smtp_server.mails) == 1 and await pending(redis) == 1

    await eventually(mailed_and_still_pending)
    assert receiver.requests == []
    [group] = await redis.xinfo_groups(TRIGGERS)
    assert group["pending"] == 1

    async def both_settled() -> bool:
        return len(await results(redis)) == 2 and await pending(redis) == 0

    await eventually(both_settled)
    entries = await redis.xpending_range(TRIGGERS, names.GROUP_NOTIFIER, min="-", max="+", count=10)
    assert entries == []
    await publish(redis, firing(1, "email,c1"))  # and a late copy of the trigger: only acknowledged

    async def copy_acknowledged() -> bool:
        [group] = await redis.xinfo_groups(TRIGGERS)
        return bool(group["entries-read"] == 2) and await pending(redis) == 0

    await eventually(copy_acknowledged)
    await asyncio.sleep(0.3)
    assert message_ids(smtp_server) == {message_id(1): 1}
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["t1"]
    final = await results(redis, retrying=True)
    assert len(by_channel(final, "email")) == 1 and len(by_channel(final, "c1")) == 1


async def test_two_notifiers_on_one_stream_deliver_each_firing_once_per_channel(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    firings = 40
    await put(redis, "c1", receiver.url())
    await redis.xgroup_create(TRIGGERS, names.GROUP_NOTIFIER, id="0", mkstream=True)
    await publish(redis, *(firing(n, "email,c1") for n in range(firings)))
    notifier(channel_settings(smtp_server.port, consumer_name="n1"))
    notifier(channel_settings(smtp_server.port, consumer_name="n2"))

    async def all_settled() -> bool:
        return len(await results(redis)) == 2 * firings and await pending(redis) == 0

    await eventually(all_settled, within=20)
    await asyncio.sleep(0.3)
    assert message_ids(smtp_server) == {message_id(n): 1 for n in range(firings)}
    assert Counter(r.headers["webhook-id"] for r in receiver.requests) == {f"t{n}": 1 for n in range(firings)}
    assert all(r.verified for r in receiver.requests)
    final = await results(redis)
    assert Counter((r.channel_id, r.status) for r in final) == {("email", "sent"): firings, ("c1", "sent"): firings}
    assert all([await redis.exists(delivery_sent_key(f"t{n}@c1")) for n in range(firings)])


async def test_a_retry_queued_before_channels_is_the_account_emails(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier
) -> None:
    legacy = {**firing(1, None).to_fields(), "retry_attempts": "1", "retry_first_failed_ms": "1", "retry_entry_id": ""}
    await redis.hset(names.notifier_retry_key(SHARD, "t1"), mapping=legacy)  # type: ignore[arg-type]
    await redis.zadd(names.notifier_retry_queue_key(SHARD), {"t1": 0})
    notifier(channel_settings(smtp_server.port, retry_for_s=3600))

    async def sent() -> bool:
        return [(r.status, r.channel_id, r.attempts) for r in await results(redis)] == [("sent", "email", 2)]

    await eventually(sent)
    assert message_ids(smtp_server) == {message_id(1): 1}
    assert not await redis.exists(names.notifier_retry_key(SHARD, "t1"))
