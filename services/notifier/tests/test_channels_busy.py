"""A slow webhook endpoint holds its own few places only: the mail behind its firings goes out at once."""

from __future__ import annotations

import time

from channel_delivery_testkit import channel_settings, firing, publish, put
from notifier_testkit import StartNotifier, results
from redis.asyncio import Redis

from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually
from pricealert.testsupport.webhooks import Cue, WebhookReceiver


async def test_a_slow_webhook_host_does_not_hold_up_mail_and_its_overflow_is_retried(
    redis: Redis, smtp_server: MailboxServer, notifier: StartNotifier, receiver: WebhookReceiver
) -> None:
    receiver.cue = Cue(status=204, delay_s=2.5)  # slow, yet within the timeout: each request holds its place
    await put(redis, "c1", receiver.url())
    await publish(redis, *(firing(n, "c1") for n in range(20)), *(firing(n, None) for n in range(100, 120)))
    started = time.monotonic()
    notifier(
        channel_settings(
            smtp_server.port,
            webhook_timeout_s=4.0,
            webhook_concurrency=2,
            webhook_per_host=2,
            webhook_backoff_base_s=5.0,
            webhook_backoff_max_s=5.0,
        )
    )

    async def mail_sent() -> bool:
        return len(smtp_server.mails) == 20

    await eventually(mail_sent, within=10)
    assert time.monotonic() - started < 2.0, "the mail waited for the slow webhooks"
    assert len(receiver.requests) <= 2

    async def webhooks_settled() -> bool:
        return sum(r.channel_id == "c1" for r in await results(redis, retrying=True)) == 20

    await eventually(webhooks_settled, within=10)
    on_hook = [r for r in await results(redis, retrying=True) if r.channel_id == "c1"]
    busy = [r for r in on_hook if r.status == "retrying"]
    assert len(busy) >= 16 and all(r.error is not None and "busy" in r.error for r in busy)
    assert all(r.next_retry_at is not None for r in busy)
