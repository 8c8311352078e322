"""SMTP delivery over a small pool of reused connections, with failures sorted into transient and permanent."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib

from pricealert.notifier.mail import RenderedMail
from pricealert.notifier.settings import NotifierSettings, SmtpTls

# A pooled connection unused for this long is probed with NOOP before it carries a mail.
IDLE_PROBE_S = 5.0


class SendFailed(Exception):
    """A receiver (SMTP server, webhook, Apprise service) did not take a delivery; `permanent` says whether a retry
    could help, `reply` and `http_status` what it answered, `disable` that the channel is gone (HTTP 410)."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        reply: str | None = None,
        http_status: int | None = None,
        disable: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.reply = reply
        self.http_status = http_status
        self.disable = disable


def classify(exc: BaseException) -> SendFailed:
    """5xx answers and unusable addresses are permanent; 4xx, refusals to connect and timeouts are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return SendFailed(f"recipient refused: {detail}", permanent=all(c >= 500 for c in codes), reply=detail[:200])
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        reason = f"{exc.code} {exc.message}"
        return SendFailed(f"recipient refused: {reason}", permanent=exc.code >= 500, reply=reason[:200])
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        reason = f"{exc.code} {exc.message}"
        return SendFailed(reason, permanent=exc.code >= 500, reply=reason[:200])
    if isinstance(exc, ssl.SSLError):  # before ValueError: a failed certificate check is both
        return SendFailed(f"TLS: {exc}", permanent=False)
    if isinstance(exc, ValueError):  # aiosmtplib refuses addresses that cannot go on a command line
        return SendFailed(f"invalid address: {exc}", permanent=True)
    if isinstance(exc, TimeoutError):
        return SendFailed(f"timed out: {exc or 'no answer in time'}", permanent=False)
    return SendFailed(f"{type(exc).__name__}: {exc}", permanent=False)


async def _transaction(client: aiosmtplib.SMTP, mail: RenderedMail) -> str:
    """MAIL, RCPT, DATA for one recipient (sendmail without its repeated address parsing), RSET on refusal.

    No per-command timeouts: the caller's deadline covers the whole transaction, and a timer per
    command is a measurable share of the CPU time of a mail. Returns the server's answer to DATA ("250 …").
    """
    try:
        await client.mail(mail.sender, timeout=None)
        await client.rcpt(mail.recipient, timeout=None)
        accepted = await client.data(mail.data, timeout=None)
    except aiosmtplib.SMTPResponseException:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.rset(timeout=None)
        raise
    return f"{accepted.code} {accepted.message}"[:200]


class SmtpPool:
    """Up to `size` open SMTP connections, each carrying one mail at a time."""

    def __init__(self, settings: NotifierSettings, size: int) -> None:
        self.settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._slots = asyncio.Semaphore(size)

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_s,
            use_tls=s.smtp_tls is SmtpTls.TLS,
            start_tls=s.smtp_tls is SmtpTls.STARTTLS,
            validate_certs=s.smtp_validate_certs,
            cert_bundle=s.smtp_ca_file,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        )

    async def _checkout(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, last_used = self._idle.pop()
            if not client.is_connected:
                continue
            if time.monotonic() - last_used < IDLE_PROBE_S:
                return client
            try:
                await client.noop()
                return client
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        client = self._new_client()
        await client.connect()
        return client

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the `size` places for a mail in flight; `deliver` is called inside it."""
        async with self._slots:
            yield

    async def deliver(self, mail: RenderedMail) -> str:
        """Deliver one mail within NOTIFIER_SEND_TIMEOUT_S or raise SendFailed (call it inside `slot`); returns the
        server's reply."""
        client: aiosmtplib.SMTP | None = None
        try:
            async with asyncio.timeout(self.settings.send_timeout_s):
                try:
                    client = await self._checkout()
                except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
                    # Refusals while connecting (TLS, a 5xx to AUTH) are about this service's set-up, not
                    # about the mail: keep the mail and retry while someone fixes it.
                    raise SendFailed(f"cannot connect: {classify(exc).reason}", permanent=False) from exc
                reply = await _transaction(client, mail)
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
            if client is not None:
                # After a refusal the envelope was reset, so the connection is still good.
                refused = isinstance(exc, aiosmtplib.SMTPResponseException)
                if refused and client.is_connected and not isinstance(exc, aiosmtplib.SMTPServerDisconnected):
                    self._idle.append((client, time.monotonic()))
                else:
                    client.close()
            raise classify(exc) from exc
        except BaseException:
            if client is not None:
                client.close()
            raise
        self._idle.append((client, time.monotonic()))
        return reply

    async def send(self, mail: RenderedMail) -> str:
        """Take a slot and deliver one mail, or raise SendFailed; returns the server's reply."""
        async with self.slot():
            return await self.deliver(mail)

    async def close(self) -> None:
        """Say QUIT on every idle connection."""
        while self._idle:
            client, _ = self._idle.pop()
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
