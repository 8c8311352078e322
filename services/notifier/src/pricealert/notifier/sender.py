"""SMTP delivery over a small pool of reused connections, with failures sorted into transient and permanent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib

from pricealert.notifier.mail import RenderedMail
from pricealert.notifier.settings import NotifierSettings, SmtpTls

# A pooled connection unused for this long is probed with NOOP before it carries a mail.
IDLE_PROBE_S = 5.0


class SendFailed(Exception):
    """The SMTP server did not accept a mail; `permanent` says whether a retry could help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def classify(exc: Exception) -> SendFailed:
    """5xx answers and refused addresses are permanent; 4xx, refusals to connect and timeouts are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return SendFailed(f"recipient refused: {detail}", permanent=all(c >= 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return SendFailed(f"{exc.code} {exc.message}", permanent=exc.code >= 500)
    return SendFailed(f"{type(exc).__name__}: {exc}", permanent=False)


class SmtpPool:
    """Up to `size` open SMTP connections, each carrying one mail at a time."""

    def __init__(self, settings: NotifierSettings, size: int) -> None:
        self.settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._slots = asyncio.Semaphore(size)

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, timeout=s.smtp_timeout_s,
            use_tls=s.smtp_tls is SmtpTls.TLS, start_tls=s.smtp_tls is SmtpTls.STARTTLS,
            username=s.smtp_username, password=s.smtp_password.get_secret_value() if s.smtp_password else None,
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
            except aiosmtplib.SMTPException:
                client.close()
        client = self._new_client()
        await client.connect()
        return client

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        """A connected client; it returns to the pool unless the caller's block raised."""
        async with self._slots:
            client = await self._checkout()
            try:
                yield client
            except BaseException:
                client.close()
                raise
            self._idle.append((client, time.monotonic()))

    async def send(self, mail: RenderedMail) -> None:
        """Deliver one mail or raise SendFailed."""
        try:
            async with self.connection() as client:
                await client.sendmail(mail.sender, [mail.recipient], mail.data)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise classify(exc) from exc

    async def close(self) -> None:
        """Say QUIT on every idle connection."""
        while self._idle:
            client, _ = self._idle.pop()
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
