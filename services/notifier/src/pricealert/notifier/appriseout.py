"""Apprise delivery (Telegram, Discord, Slack, ntfy, Pushover, json://, …) through the `apprise` library.

A self-hosted target (json://host, ntfy://host, …) is checked by the SSRF guard at every send; vendor URLs go to the
vendor's fixed public host. Apprise's plugins block on `requests`: `async_notify` runs them in Apprise's worker
threads, never on the event loop, at most NOTIFIER_APPRISE_CONCURRENCY at a time (a quarter of them per destination,
failing fast when those are busy), each within NOTIFIER_APPRISE_TIMEOUT_S. Redirects are not followed. Failure
reasons come from Apprise's own log of the call, scrubbed of the URL's secrets; Apprise's logger does not reach the
service's log (its lines may quote a URL).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from urllib.parse import unquote

import apprise
import structlog

from pricealert.common.channels import ChannelSpec
from pricealert.common.urlguard import Resolver, UnsafeTarget, apprise_host, check_apprise_url, redact_url
from pricealert.common.urlguard import system_resolver as default_resolver
from pricealert.notifier.delivered import Delivered
from pricealert.notifier.sender import SendFailed
from pricealert.notifier.settings import NotifierSettings
from pricealert.notifier.slots import HostSlots
from pricealert.notifier.webhook import channel_policy

log = structlog.get_logger()

REASON_CHARS = 300
_SEPARATORS = re.compile(r"[/:@?&=#,;+\s]+")


def _quiet_apprise() -> None:
    # Apprise logs through its own logger; its per-call capture (AppriseResult.logs) still sees every line.
    logger = logging.getLogger(apprise.LOGGER_NAME)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def secrets_of(url: str) -> list[str]:
    """The parts of an Apprise URL that may be secret (tokens, users, passwords, path and query values), longest
    first; the scheme, and a self-hosted target's host, are not."""
    rest = url.partition("://")[2]
    host = apprise_host(url)
    parts = {p for p in _SEPARATORS.split(rest) if len(p) >= 4 and p != host}
    parts |= {unquote(p) for p in parts}
    return sorted(parts, key=len, reverse=True)


def destination(url: str) -> str:
    """What a URL's notifications share a cap on: a self-hosted target's host, else one account of the vendor (its
    token, hashed: the key shows in reasons)."""
    if (host := apprise_host(url)) is not None:
        return host.lower()
    scheme, _, rest = url.partition("://")
    account = rest.split("/", 1)[0]
    return f"{scheme.lower()}:{hashlib.sha256(account.encode()).hexdigest()[:10]}"


def scrub(text: str, url: str) -> str:
    """`text` with every possibly secret part of `url` masked."""
    for part in secrets_of(url):
        text = text.replace(part, "***")
    return text


class AppriseSender:
    """Sends a title and a body to an Apprise URL."""

    def __init__(self, settings: NotifierSettings, resolver: Resolver = default_resolver) -> None:
        self.settings = settings
        self._policy = channel_policy(settings)
        self._resolver = resolver
        self._timeout = settings.apprise_timeout_s
        # A quarter of the places per destination: one slow target never holds them all.
        self._slots = HostSlots(max(1, settings.apprise_concurrency // 4), settings.apprise_concurrency)
        self._asset = apprise.AppriseAsset(
            http_redirects=False,
            secure_logging=True,
            storage_mode="memory",
            service_timeout=self._timeout,
            result_log_disk_size=0,
        )
        _quiet_apprise()

    def _build(self, url: str) -> apprise.Apprise:
        notifier = apprise.Apprise(asset=self._asset)
        if not notifier.add(url) or len(notifier) != 1:
            raise SendFailed("Apprise cannot use this URL (unknown service or malformed)", permanent=True)
        for service in notifier:
            service.redirects = False  # also when the URL asks for them (?redirect=yes): never followed
        return notifier

    async def send(self, spec: ChannelSpec, title: str, body: str) -> Delivered:
        """Notify the channel's Apprise URL, or raise SendFailed (permanent for a refused or unusable URL)."""
        url = redact_url(spec.target)
        started = time.monotonic()
        try:
            delivered = await self._send(spec.target, title, body)
        except SendFailed as exc:
            log.warning(
                "apprise.failed",
                url=url,
                reason=exc.reason,
                permanent=exc.permanent,
                ms=round((time.monotonic() - started) * 1000),
            )
            raise
        log.info("apprise.delivered", url=url, reply=delivered.reply, ms=round((time.monotonic() - started) * 1000))
        return delivered

    async def _send(self, url: str, title: str, body: str) -> Delivered:
        try:
            await check_apprise_url(url, self._policy, self._resolver)
        except UnsafeTarget as exc:
            raise SendFailed(f"refused target: {exc.message}", permanent=True) from exc
        # Parsing a URL loads Apprise's plugin modules the first time: not on the event loop either.
        notifier = await asyncio.to_thread(self._build, url)
        service = notifier[0].service_name
        deadline = asyncio.get_running_loop().time() + self._timeout + 1.0
        try:
            async with self._slots.slot(destination(url), deadline), asyncio.timeout_at(deadline):
                result = await notifier.async_notify(body=body, title=title, timeout=self._timeout)
        except TimeoutError as exc:
            raise SendFailed(f"{service}: no answer within {self._timeout:g} s", permanent=False) from exc
        except SendFailed:
            raise
        except Exception as exc:  # a plugin's bug: the next attempt may fare better, the stream must go on
            detail = scrub(f"{type(exc).__name__}: {exc}", url)[:REASON_CHARS]
            raise SendFailed(f"{service}: {detail}", permanent=False) from exc
        if result:
            return Delivered(reply=f"{service}: sent")
        if result.status is apprise.AppriseResultStatus.TIMEOUT:
            raise SendFailed(f"{service}: no answer within {self._timeout:g} s", permanent=False)
        lines = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        reason = scrub("; ".join(dict.fromkeys(lines)) or "no reason given", url)[:REASON_CHARS]
        raise SendFailed(f"{service}: {reason}", permanent=False, reply=reason)
