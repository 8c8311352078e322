"""The webhook sender's guards: the SSRF check at send, the connection pinned to a checked address, per-host caps."""

from __future__ import annotations

import asyncio
import time

import pytest
from webhook_testkit import Resolver, channel, firing, new_secret, settings

from pricealert.common.channels import ChannelSecret
from pricealert.common.urlguard import TargetPolicy, check_webhook_url
from pricealert.notifier import webhookpayload
from pricealert.notifier.sender import SendFailed
from pricealert.notifier.slots import HOST_WAIT_S
from pricealert.notifier.webhook import WebhookSender
from pricealert.testsupport.webhooks import Cue, WebhookReceiver

SECRET = new_secret()
PUBLIC = "93.184.215.14"  # only ever answered to a check, never connected to
PAYLOAD = webhookpayload.firing_payload(firing(), None)


async def refused(sender: WebhookSender, url: str) -> SendFailed:
    with pytest.raises(SendFailed) as caught:
        await sender.send(channel(url, ChannelSecret(secret=SECRET)), "t1", PAYLOAD)
    return caught.value


@pytest.mark.parametrize("host", ["127.0.0.1", "hook.test"])
async def test_private_targets_are_refused_at_send(host: str) -> None:
    resolver = Resolver({"hook.test": [["10.0.0.7"]]})
    sender = WebhookSender(settings(channels_allow_private_targets=False), resolver)
    async with WebhookReceiver() as receiver:
        exc = await refused(sender, receiver.url(host=host))
        await sender.close()
    assert exc.permanent and not exc.disable
    assert exc.reason.startswith("refused target:")
    assert "private address" in exc.reason or "loopback address" in exc.reason
    assert receiver.requests == []


async def test_a_host_rebound_to_a_private_address_after_its_check_is_refused() -> None:
    # Public when the channel was saved (the API's check), private at send: DNS changed in between.
    resolver = Resolver({"hook.test": [[PUBLIC], ["127.0.0.1"]]})
    policy = TargetPolicy(allow_private=False)
    sender = WebhookSender(settings(channels_allow_private_targets=False), resolver)
    async with WebhookReceiver() as receiver:
        url = receiver.url(host="hook.test")
        assert (await check_webhook_url(url, policy, resolver)).addresses[0].compressed == PUBLIC
        exc = await refused(sender, url)
        await sender.close()
    assert exc.permanent and "127.0.0.1" in exc.reason
    assert receiver.requests == []


async def test_the_connection_goes_to_the_checked_address_not_to_a_second_answer() -> None:
    # The check answers 127.0.0.2 for `localhost`; the system's DNS (which an unpinned client would ask when it
    # connects) answers 127.0.0.1, where another server listens on the same port: it must get nothing.
    resolver = Resolver({"localhost": [["127.0.0.2"]]})
    sender = WebhookSender(settings(), resolver)
    async with WebhookReceiver(host="127.0.0.2", secrets=[SECRET]) as checked:  # noqa: SIM117  # port known after
        async with WebhookReceiver(host="127.0.0.1", port=checked.port) as other:
            delivered = await sender.send(
                channel(checked.url(host="localhost"), ChannelSecret(secret=SECRET)), "t1", PAYLOAD
            )
            await sender.close()
    assert delivered.http_status == 200
    assert [r.verified for r in checked.requests] == [True]
    assert checked.requests[0].headers["host"] == f"localhost:{checked.port}"
    assert other.requests == []
    assert resolver.calls == {"localhost": 1}


async def test_a_name_only_the_checking_resolver_knows_is_reached() -> None:
    # `hook.invalid` resolves nowhere but in the sender's resolver: delivered only if the checked address is used.
    sender = WebhookSender(settings(), Resolver({"hook.invalid": [["127.0.0.1"]]}))
    async with WebhookReceiver() as receiver:
        url = receiver.url(host="hook.invalid")
        delivered = await sender.send(channel(url, ChannelSecret(secret=SECRET)), "t1", PAYLOAD)
        await sender.close()
    assert delivered.http_status == 200 and len(receiver.requests) == 1


async def test_a_dead_slow_host_delays_no_delivery_to_another_host() -> None:
    resolver = Resolver({"slow.test": [["127.0.0.1"]], "fast.test": [["127.0.0.1"]]})
    sender = WebhookSender(settings(webhook_per_host=2, webhook_timeout_s=5.0), resolver)
    async with WebhookReceiver(cue=Cue(delay_s=4.0)) as slow, WebhookReceiver() as fast:
        slow_spec = channel(slow.url(host="slow.test"), ChannelSecret(secret=SECRET))
        hanging = [asyncio.create_task(sender.send(slow_spec, f"t{n}", PAYLOAD)) for n in range(2)]
        await slow.wait_for(2)

        started = time.monotonic()
        with pytest.raises(SendFailed) as busy:
            await sender.send(slow_spec, "t3", PAYLOAD)
        assert not busy.value.permanent and busy.value.reason.startswith("destination busy")
        assert time.monotonic() - started < HOST_WAIT_S + 1.0  # refused after the short wait, not the 4 s

        started = time.monotonic()
        delivered = await sender.send(channel(fast.url(host="fast.test"), ChannelSecret(secret=SECRET)), "t4", PAYLOAD)
        assert delivered.http_status == 200
        assert time.monotonic() - started < 1.5  # not behind the slow host's 4 s
        assert not any(task.done() for task in hanging)

        assert all(d.http_status == 200 for d in await asyncio.gather(*hanging))
        await sender.close()
    assert len(slow.requests) == 2


async def test_https_is_required_in_production() -> None:
    production = settings(channels_allow_private_targets=False, env="production", redis_url="redis://10.1.1.1:6379/0")
    sender = WebhookSender(production, Resolver({"hook.test": [[PUBLIC]]}))
    exc = await refused(sender, "http://hook.test/x")
    await sender.close()
    assert exc.permanent and "https" in exc.reason
