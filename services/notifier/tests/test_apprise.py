"""The Apprise sender through json:// to a real local receiver: delivered, failures with reasons but no secrets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import apprise
import pytest
from webhook_testkit import Resolver, channel, settings

from pricealert.common.channels import ChannelKind, ChannelSpec
from pricealert.notifier.appriseout import AppriseSender, destination, scrub
from pricealert.notifier.sender import SendFailed
from pricealert.testsupport.webhooks import Cue, WebhookReceiver

PASSWORD = "hunter2-s3cret"
TOKEN = "tok_9f8e7d6c5b4a"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as r:
        yield r


def apprise_channel(url: str) -> ChannelSpec:
    return channel(url, kind=ChannelKind.APPRISE)


def json_url(receiver: WebhookReceiver, host: str = "127.0.0.1") -> str:
    """A json:// URL with secrets in it: a password (basic auth) and a token in the path."""
    return f"json://ada:{PASSWORD}@{host}:{receiver.port}/hooks/{TOKEN}"


async def test_json_delivers_title_and_body(receiver: WebhookReceiver) -> None:
    sender = AppriseSender(settings())
    delivered = await sender.send(apprise_channel(json_url(receiver)), "BTCUSDT rose to 100012.5", "moon: above 100000")

    assert delivered.reply == "JSON: sent"
    [got] = receiver.requests
    assert got.method == "POST" and got.path == f"/hooks/{TOKEN}"
    assert got.json()["title"] == "BTCUSDT rose to 100012.5"
    assert got.json()["message"] == "moon: above 100000"


async def test_a_failure_gives_a_reason_without_the_urls_secrets(
    receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    receiver.cue = Cue(status=500, body=b"boom")
    with pytest.raises(SendFailed) as caught:
        await AppriseSender(settings()).send(apprise_channel(json_url(receiver)), "t", "b")

    exc = caught.value
    assert not exc.permanent and "500" in exc.reason and exc.reason.startswith("JSON: ")
    assert len(receiver.requests) == 1
    written = capsys.readouterr()
    for text in (exc.reason, str(exc.reply), written.out, written.err, caplog.text):
        assert PASSWORD not in text and TOKEN not in text


async def test_a_receiver_that_is_down_is_retried(receiver: WebhookReceiver) -> None:
    await receiver.down()
    with pytest.raises(SendFailed) as caught:
        await AppriseSender(settings()).send(apprise_channel(json_url(receiver)), "t", "b")
    assert not caught.value.permanent and "127.0.0.1" in caught.value.reason
    assert PASSWORD not in caught.value.reason and TOKEN not in caught.value.reason


@pytest.mark.parametrize("url", ["nonsense://abc/def", "tgram://", "json://"])
async def test_a_url_apprise_cannot_use_fails_for_good(url: str) -> None:
    with pytest.raises(SendFailed) as caught:
        await AppriseSender(settings()).send(apprise_channel(url), "t", "b")
    assert caught.value.permanent


async def test_a_private_target_is_refused_at_send(receiver: WebhookReceiver) -> None:
    sender = AppriseSender(settings(channels_allow_private_targets=False), Resolver({}))
    with pytest.raises(SendFailed) as caught:
        await sender.send(apprise_channel(json_url(receiver)), "t", "b")
    assert caught.value.permanent and caught.value.reason.startswith("refused target:")
    assert receiver.requests == []


async def test_a_slow_target_does_not_block_the_event_loop(receiver: WebhookReceiver) -> None:
    receiver.cue = Cue(delay_s=1.0)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        delivered = await AppriseSender(settings()).send(apprise_channel(json_url(receiver)), "t", "b")
    finally:
        ticker.cancel()
    assert delivered.reply == "JSON: sent"
    assert len(gaps) > 30 and max(gaps) < 0.5  # a blocked loop would stall for the whole 1 s


async def test_no_answer_in_time_is_retried(receiver: WebhookReceiver) -> None:
    receiver.cue = Cue(delay_s=5.0)
    started = time.monotonic()
    with pytest.raises(SendFailed) as caught:
        await AppriseSender(settings(apprise_timeout_s=1.0)).send(apprise_channel(json_url(receiver)), "t", "b")
    assert not caught.value.permanent
    assert time.monotonic() - started < 3.5  # the 1 s timeout, not the 5 s delay


def test_scrub_masks_tokens_of_vendor_urls() -> None:
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567"
    text = scrub(f"failed to reach {url} with bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", url)
    assert "AAHdqTcv" not in text and "123456789" not in text and "1001234567" not in text


async def test_a_slow_target_delays_no_other_destination() -> None:
    # 4 places in all: 1 per destination.
    sender = AppriseSender(
        settings(apprise_concurrency=4, apprise_timeout_s=8.0), Resolver({"localhost": [["127.0.0.1"]]})
    )
    # 3 s: slow, within Apprise's own 4 s socket read timeout.
    async with WebhookReceiver(cue=Cue(delay_s=3.0)) as slow, WebhookReceiver() as fast:
        hanging = asyncio.create_task(sender.send(apprise_channel(f"json://127.0.0.1:{slow.port}/x"), "t", "b"))
        await slow.wait_for(1)
        started = time.monotonic()
        with pytest.raises(SendFailed) as busy:
            await sender.send(apprise_channel(f"json://127.0.0.1:{slow.port}/y"), "t", "b")
        assert busy.value.reason.startswith("destination busy") and not busy.value.permanent
        delivered = await sender.send(apprise_channel(f"json://localhost:{fast.port}/z"), "t", "b")
        assert delivered.reply == "JSON: sent"
        assert time.monotonic() - started < 2.5 and not hanging.done()
        assert (await hanging).reply == "JSON: sent"


def test_vendor_destinations_are_one_account_and_show_no_token() -> None:
    first = destination("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123")
    assert first == destination("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100999")
    assert first != destination("tgram://987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123")
    assert first.startswith("tgram:") and "AAHdq" not in first and "123456789" not in first
    assert destination("json://Hooks.Example.com:8080/x") == "hooks.example.com"


async def test_a_plugin_that_crashes_is_retried_without_the_secret_in_the_reason(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(self: apprise.Apprise, **kwargs: object) -> None:
        raise RuntimeError(f"bug while sending to {json_url(receiver)}")

    monkeypatch.setattr(apprise.Apprise, "async_notify", crash)
    with pytest.raises(SendFailed) as caught:
        await AppriseSender(settings()).send(apprise_channel(json_url(receiver)), "t", "b")
    assert not caught.value.permanent and "RuntimeError" in caught.value.reason
    assert PASSWORD not in caught.value.reason and TOKEN not in caught.value.reason
