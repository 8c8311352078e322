"""Webhook delivery (Standard Webhooks): a signed POST to a checked, pinned address, its answer sorted into outcomes.

The URL is checked by the SSRF guard at every send, and the connection goes to one of the addresses that check
approved (pinning.py), never to whatever a second DNS answer says (rebinding). Redirects are not followed,
answers are read up to BODY_CAP bytes, and each destination host gets at most NOTIFIER_WEBHOOK_PER_HOST requests
in flight: a delivery that finds them all busy fails at once (and is retried later) instead of waiting.
"""

from __future__ import annotations

import asyncio
import binascii
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from yarl import URL

from pricealert.common.channels import ChannelSpec
from pricealert.common.settings import Environment
from pricealert.common.urlguard import (
    Resolved,
    Resolver,
    TargetPolicy,
    UnsafeTarget,
    check_webhook_url,
    redact_url,
    system_resolver,
)
from pricealert.notifier.delivered import Delivered
from pricealert.notifier.pinning import pinned, pinned_session
from pricealert.notifier.sender import SendFailed
from pricealert.notifier.settings import NotifierSettings
from pricealert.notifier.slots import HostSlots
from pricealert.notifier.webhookpayload import encode

log = structlog.get_logger()

BODY_CAP = 4096  # bytes of an answer read; the rest is never received
REPLY_CHARS = 200  # of the answer kept in a failure's reply
USER_AGENT = "pricealert-webhooks/1"


def channel_policy(settings: NotifierSettings) -> TargetPolicy:
    """Where webhooks and Apprise URLs may point in this deployment (https only in production)."""
    return settings.target_policy(production=settings.env is Environment.PRODUCTION)


def _signer(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except (ValueError, binascii.Error, RuntimeError, EmptyWebhookSecretError) as exc:
        raise SendFailed("the channel's signing secret is unusable", permanent=True) from exc


def sign(spec: ChannelSpec, msg_id: str, at: datetime, body: bytes) -> str:
    """The webhook-signature header: one `v1,<base64>` per signing secret of the channel, space-separated."""
    secrets = spec.signing_secrets(int(at.timestamp() * 1000))
    if not secrets:
        raise SendFailed("the channel has no signing secret", permanent=True)
    return " ".join(_signer(secret).sign(msg_id, at, body) for secret in secrets)


def _snippet(head: bytes) -> str:
    return " ".join(head.decode("utf-8", errors="replace").split())[:REPLY_CHARS]


def outcome(status: int, head: bytes) -> Delivered:
    """Delivered for a 2xx answer; raises SendFailed for any other."""
    if 200 <= status < 300:
        return Delivered(reply=f"HTTP {status}", http_status=status)
    reply = f"HTTP {status} {_snippet(head)}".rstrip()
    if status == 410:
        raise SendFailed(
            "HTTP 410 Gone: the endpoint is gone, the channel is disabled",
            permanent=True,
            disable=True,
            reply=reply,
            http_status=status,
        )
    reason = f"HTTP {status}: redirect not followed" if 300 <= status < 400 else f"HTTP {status}"
    raise SendFailed(reason, permanent=False, reply=reply, http_status=status)


class WebhookSender:
    """Signs and POSTs webhook deliveries over one pooled HTTP session (aiohttp)."""

    def __init__(self, settings: NotifierSettings, resolver: Resolver = system_resolver) -> None:
        self.settings = settings
        self._policy = channel_policy(settings)
        self._resolver = resolver
        self._timeout = settings.webhook_timeout_s
        self.slots = HostSlots(settings.webhook_per_host, settings.webhook_concurrency)
        self._session: aiohttp.ClientSession | None = None  # made in the event loop, at the first send

    async def send(self, spec: ChannelSpec, msg_id: str, payload: dict[str, Any]) -> Delivered:
        """Deliver `payload` to the channel's URL as webhook `msg_id`, or raise SendFailed."""
        target = redact_url(spec.target)
        started = time.monotonic()
        try:
            delivered = await self._send(spec, msg_id, payload)
        except SendFailed as exc:
            log.warning(
                "webhook.failed",
                url=target,
                webhook_id=msg_id,
                reason=exc.reason,
                permanent=exc.permanent,
                http_status=exc.http_status,
                ms=round((time.monotonic() - started) * 1000),
            )
            raise
        log.info(
            "webhook.delivered",
            url=target,
            webhook_id=msg_id,
            http_status=delivered.http_status,
            ms=round((time.monotonic() - started) * 1000),
        )
        return delivered

    async def _send(self, spec: ChannelSpec, msg_id: str, payload: dict[str, Any]) -> Delivered:
        body = encode(payload)
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "accept-encoding": "identity",  # the cap counts bytes received, not what they would inflate to
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(spec, msg_id, now, body),
        }
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                resolved = await check_webhook_url(spec.target, self._policy, self._resolver)
        except UnsafeTarget as exc:
            raise SendFailed(f"refused target: {exc.message}", permanent=True) from exc
        except TimeoutError as exc:
            raise SendFailed("timed out resolving the webhook's host", permanent=False) from exc
        async with self.slots.slot(resolved.host.lower(), deadline):
            status, head = await self._post(spec.target, body, headers, resolved, deadline)
        return outcome(status, head)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], resolved: Resolved, deadline: float
    ) -> tuple[int, bytes]:
        try:
            target = URL(url)
        except (TypeError, ValueError) as exc:
            raise SendFailed("the webhook URL is not usable", permanent=True) from exc
        if self._session is None:
            self._session = pinned_session(self.settings)
        try:
            with pinned(target, resolved):
                async with asyncio.timeout_at(deadline):
                    response = await self._session.post(target, data=body, headers=headers, allow_redirects=False)
        except TimeoutError as exc:
            raise SendFailed(f"timed out: no answer within {self._timeout:g} s", permanent=False) from exc
        except aiohttp.InvalidURL as exc:
            raise SendFailed("the webhook URL is not usable", permanent=True) from exc
        except aiohttp.ClientError as exc:
            # ConnectError names what a connection refused, unreachable or untrusted comes to, whatever the client.
            kind = "ConnectError" if isinstance(exc, aiohttp.ClientConnectorError) else type(exc).__name__
            detail = str(exc).replace(url, redact_url(url)) or "no detail"
            raise SendFailed(f"{kind}: {detail}", permanent=False) from exc
        # The answer's status decides; its body is only read for the reply, up to the cap and the deadline.
        head = bytearray()
        try:
            async with asyncio.timeout_at(deadline):
                while len(head) < BODY_CAP and (chunk := await response.content.readany()):
                    head += chunk
        except (TimeoutError, aiohttp.ClientError):
            pass
        finally:
            # A connection whose answer was read to its end goes back to the pool; any other is closed.
            if response.content.at_eof():
                response.release()
            else:
                response.close()
        return response.status, bytes(head[:BODY_CAP])

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
