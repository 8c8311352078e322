"""Sending on the channels other than mail: a firing or a test as a signed webhook, or as an Apprise notification."""

from __future__ import annotations

from pricealert.common import alertmessage
from pricealert.common.channels import ChannelKind, ChannelSpec, ChannelTestRequest
from pricealert.common.events import Trigger
from pricealert.common.urlguard import Resolver, system_resolver
from pricealert.notifier.alerttext import describe, placeholder_values
from pricealert.notifier.appriseout import AppriseSender
from pricealert.notifier.delivered import Delivered
from pricealert.notifier.jobs import Job
from pricealert.notifier.sender import SendFailed
from pricealert.notifier.settings import NotifierSettings
from pricealert.notifier.webhook import WebhookSender
from pricealert.notifier.webhookpayload import firing_payload, test_message_id, test_payload

TEST_TITLE = "pricealert: a test notification"
TEST_BODY = "This channel receives your pricealert alerts. You asked for this test; nothing else happened."


def user_message(trigger: Trigger) -> str | None:
    """The alert's message as rendered for this firing (None if it has none)."""
    return alertmessage.render(trigger.message, placeholder_values(trigger)) if trigger.message else None


def apprise_text(trigger: Trigger) -> tuple[str, str]:
    """The title and body of a firing's Apprise notification: the mail's subject, and its headline and details."""
    text = describe(trigger)
    lines = [text.headline]
    if text.notice:
        lines.append(text.notice)
    if text.message:
        lines += ["", text.message]
    lines += ["", *(f"{label}: {value}" for label, value in text.rows)]
    return text.subject, "\n".join(lines)


class ChannelSenders:
    """The webhook and Apprise senders of one process, chosen by the channel's kind."""

    def __init__(self, settings: NotifierSettings, resolver: Resolver = system_resolver) -> None:
        self.webhook = WebhookSender(settings, resolver)
        self.apprise = AppriseSender(settings, resolver)

    async def send(self, job: Job) -> Delivered:
        """Deliver `job`'s firing on its channel (webhook id: the firing id), or raise SendFailed."""
        spec = job.spec
        if spec is None:
            raise SendFailed("no channel spec", permanent=False)
        trigger = job.trigger
        if spec.kind is ChannelKind.WEBHOOK:
            return await self.webhook.send(spec, trigger.trigger_id, firing_payload(trigger, user_message(trigger)))
        if spec.kind is ChannelKind.APPRISE:
            title, body = apprise_text(trigger)
            return await self.apprise.send(spec, title, body)
        raise SendFailed(f"no sender for {spec.kind.value} channels here", permanent=True)

    async def test(self, spec: ChannelSpec, request: ChannelTestRequest) -> Delivered:
        """Send a test on a webhook or Apprise channel, or raise SendFailed."""
        if spec.kind is ChannelKind.WEBHOOK:
            return await self.webhook.send(spec, test_message_id(request), test_payload(request))
        if spec.kind is ChannelKind.APPRISE:
            return await self.apprise.send(spec, TEST_TITLE, TEST_BODY)
        raise SendFailed(f"no sender for {spec.kind.value} channels here", permanent=True)

    async def close(self) -> None:
        """Close the pooled connections."""
        await self.webhook.close()
