"""Webhook connections pinned to the addresses the SSRF guard checked, so a second DNS answer cannot redirect them.

An HTTP client resolves a URL's host itself when it connects: a name that resolved to a public address for the
guard could resolve to a private one a moment later (DNS rebinding). Here the session's connector resolves names
through PinnedResolver, which answers only the addresses checked for the request being sent (`pinned`), and
refuses any other name. The URL keeps its host name, so the Host header, TLS SNI and the certificate check are the
name's. (A URL naming an IP address is connected to as such: the guard checked that very address.)
"""

from __future__ import annotations

import contextvars
import os
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from pricealert.common.urlguard import Resolved
from pricealert.notifier.settings import NotifierSettings

# The checked target of the request being sent in this task: PinnedResolver answers only its addresses.
_PINNED: contextvars.ContextVar[Resolved | None] = contextvars.ContextVar("webhook_pinned", default=None)

KEEPALIVE_S = 30.0  # an idle pooled connection is closed after this long
READ_BUFFER = 4096  # bytes of an answer buffered ahead of the reader (the sender reads 4 KiB at most)


@contextmanager
def pinned(url: URL, checked: Resolved) -> Iterator[None]:
    """Within this block, a connection for `url` goes to one of `checked.addresses` only."""
    # Keyed by the host as the connector names it (IDNA-encoded), which the guard's (Unicode) host may not be.
    token = _PINNED.set(Resolved(url.raw_host or "", checked.port, checked.addresses))
    try:
        yield
    finally:
        _PINNED.reset(token)


class PinnedResolver(AbstractResolver):
    """The connector's resolver: the addresses the guard checked for this request, and nothing else.

    The connector resolves in the task that sends the request (no DNS cache, see `pinned_session`), so the context
    variable set around the send is the one seen here. Keep-alive connections are pooled per host: a reused one goes
    to an address checked when it was opened.
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The checked addresses of `host` (OSError for a host that was not checked for this request)."""
        pinned = _PINNED.get()
        if pinned is None or pinned.host.lower().rstrip(".") != host.lower().rstrip(".") or pinned.port != port:
            raise OSError(f"refused: {host}:{port} was not checked for this request")
        return [
            ResolveResult(
                hostname=host,
                host=address.compressed,
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in pinned.addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


def tls_context(settings: NotifierSettings) -> ssl.SSLContext:
    """Certificates checked against certifi's CAs (or SSL_CERT_FILE's), plus NOTIFIER_WEBHOOK_CA_FILE's if set."""
    tls = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())
    if settings.webhook_ca_file:
        tls.load_verify_locations(cafile=settings.webhook_ca_file)
    return tls


def pinned_session(settings: NotifierSettings) -> aiohttp.ClientSession:
    """An HTTP session for webhooks: pooled, no proxies, no decompression, connecting only where `pinned` says."""
    connector = aiohttp.TCPConnector(
        resolver=PinnedResolver(),
        use_dns_cache=False,  # a cached answer would be another request's check, or an old one
        ssl=tls_context(settings),
        limit=settings.webhook_concurrency,
        limit_per_host=settings.webhook_per_host,
        keepalive_timeout=KEEPALIVE_S,
    )
    # trust_env=False: no proxy from the environment (one would be connected to instead of the checked address).
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        auto_decompress=False,
        read_bufsize=READ_BUFFER,
        timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout_s),
        skip_auto_headers=("Accept-Encoding",),
    )
