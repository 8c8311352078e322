"""Webhook connections pinned to the addresses the SSRF guard checked, so a second DNS answer cannot redirect them.

httpx resolves a URL's host itself when it connects: a name that resolved to a public address for the guard could
resolve to a private one a moment later (DNS rebinding). Here the client's connections go through PinnedBackend,
which connects only to the addresses checked for the request being sent (`pinned`), and refuses any other. The
URL keeps its host name, so the Host header, TLS SNI and the certificate check are the name's.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from pricealert.common.urlguard import Resolved
from pricealert.notifier.settings import NotifierSettings

# The checked target of the request being sent in this task: PinnedBackend connects only to its addresses.
_PINNED: contextvars.ContextVar[Resolved | None] = contextvars.ContextVar("webhook_pinned", default=None)


@contextmanager
def pinned(request: httpx.Request, checked: Resolved) -> Iterator[None]:
    """Within this block, a connection for `request` goes to one of `checked.addresses` only."""
    # Keyed by the host as httpcore names it (IDNA-encoded), which the guard's (Unicode) host may not be.
    token = _PINNED.set(Resolved(request.url.raw_host.decode("ascii"), checked.port, checked.addresses))
    try:
        yield
    finally:
        _PINNED.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting to the addresses the guard checked for this request, and nowhere else.

    httpcore opens a connection in the task that sends the request, so the context variable set around the send
    is the one seen here. Keep-alive connections are pooled per host: a reused one goes to an address checked
    when it was opened.
    """

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first reachable checked address of `host` (refuse a host that was not checked)."""
        pinned = _PINNED.get()
        if pinned is None or pinned.host.lower().strip("[]") != host.lower().strip("[]") or pinned.port != port:
            raise httpcore.ConnectError(f"refused: {host}:{port} was not checked for this request")
        error: Exception | None = None
        for address in pinned.addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # a Resolved has at least one address
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: webhooks go over TCP."""
        raise httpcore.ConnectError("unix sockets are no webhook target")

    async def sleep(self, seconds: float) -> None:
        """As the wrapped backend."""
        await self._backend.sleep(seconds)


def pinned_client(settings: NotifierSettings) -> httpx.AsyncClient:
    """An HTTP client for webhooks: pooled, no redirects, no proxies, connecting only where `pinned` says."""
    limits = httpx.Limits(
        max_connections=settings.webhook_concurrency,
        max_keepalive_connections=settings.webhook_concurrency,
        keepalive_expiry=30.0,
    )
    tls = httpx.create_ssl_context()  # certifi's CAs (or SSL_CERT_FILE's)
    if settings.webhook_ca_file:
        tls.load_verify_locations(cafile=settings.webhook_ca_file)
    transport = httpx.AsyncHTTPTransport(verify=tls, limits=limits, trust_env=False)
    # httpx takes no network backend: give its transport a pool that connects through PinnedBackend. Checked
    # so an httpx that renames the attribute fails here instead of silently connecting unpinned.
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise RuntimeError("this httpx has no transport._pool: webhook connections cannot be pinned")
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=tls,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=PinnedBackend(),
    )
    # No proxies from the environment (trust_env): a proxy would be connected to instead of the checked address.
    return httpx.AsyncClient(
        transport=transport, follow_redirects=False, trust_env=False, timeout=httpx.Timeout(settings.webhook_timeout_s)
    )
