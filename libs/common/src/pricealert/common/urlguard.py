"""Where a webhook or Apprise channel may point: the SSRF guard, asked when a channel is saved and again at send.

A target whose host resolves to any loopback, private, link-local, multicast, shared (CGNAT), reserved or cloud
metadata address is refused unless private targets are allowed (self-hosting, tests); in production webhooks
must be https. Every address the name resolves to is checked (a DNS answer mixing one public and one private
address is refused), and the sender connects to an address it checked (`Resolved.addresses`), so a second,
different DNS answer (rebinding) cannot slip in between the check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Apprise schemes whose URL host is where the request goes (a self-hosted server); the others name a vendor's
# fixed public host and put tokens where the host would be (tgram://bottoken/chat, discord://id/token, …).
SELF_HOSTED_APPRISE_SCHEMES = frozenset(
    {
        "json",
        "jsons",
        "xml",
        "xmls",
        "form",
        "forms",
        "ntfy",
        "ntfys",
        "gotify",
        "gotifys",
        "mmost",
        "mmosts",
        "rocket",
        "rockets",
        "matrix",
        "matrixs",
        "apprise",
        "apprises",
        "mqtt",
        "mqtts",
        "nctalk",
        "nctalks",
        "ncloud",
        "nclouds",
        "rsyslog",
        "syslog",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)


class ChannelTargetSettings(BaseSettings):
    """CHANNELS_ALLOW_PRIVATE_TARGETS: a mixin of the settings of the services that check channel targets."""

    # Off by default: webhooks and Apprise URLs may not reach this host's or its network's services. On for
    # self-hosting with receivers on the same network, and for tests against local receivers.
    channels_allow_private_targets: bool = Field(default=False, validation_alias="CHANNELS_ALLOW_PRIVATE_TARGETS")

    def target_policy(self, *, production: bool) -> TargetPolicy:
        """The guard's policy for this deployment (https only in production)."""
        return TargetPolicy(allow_private=self.channels_allow_private_targets, require_https=production)


class UnsafeTarget(ValueError):
    """A channel target the guard refuses; `code` is the API's error code, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TargetPolicy:
    """What the deployment allows: private addresses (self-hosting, tests) and plain http (not in production)."""

    allow_private: bool = False
    require_https: bool = False


@dataclass(frozen=True)
class Resolved:
    """A checked target: its host and port, and the addresses it resolved to, every one of them allowed."""

    host: str
    port: int
    addresses: tuple[IPAddress, ...]


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to, as the operating system answers."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def forbidden(address: IPAddress) -> str | None:
    """Why `address` is no place for a delivery, or None if it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved or shared address"
    return None


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises on a port that is no number
    except ValueError as exc:
        raise UnsafeTarget("invalid_url", f"not a URL: {exc}") from exc
    return parts


async def _check_host(host: str, port: int, policy: TargetPolicy, resolver: Resolver) -> Resolved:
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            addresses = await resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeTarget("unresolvable_host", f"{host} does not resolve: {exc}") from exc
    if not addresses:
        raise UnsafeTarget("unresolvable_host", f"{host} resolves to no address")
    if not policy.allow_private:
        for address in addresses:
            if (why := forbidden(address)) is not None:
                raise UnsafeTarget("private_target", f"{host} resolves to {address}, {why}: refused")
    return Resolved(host=host, port=port, addresses=tuple(dict.fromkeys(addresses)))


async def check_webhook_url(url: str, policy: TargetPolicy, resolver: Resolver = system_resolver) -> Resolved:
    """Check a webhook URL; returns the addresses to connect to, or raises UnsafeTarget."""
    parts = _split(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("invalid_url", "a webhook URL starts with https:// (or http:// outside production)")
    if policy.require_https and parts.scheme != "https":
        raise UnsafeTarget("https_required", "webhook URLs must use https")
    if not parts.hostname:
        raise UnsafeTarget("invalid_url", "the webhook URL has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("invalid_url", "put no credentials in a webhook URL: deliveries are signed instead")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return await _check_host(parts.hostname, port, policy, resolver)


def apprise_host(url: str) -> str | None:
    """The network host an Apprise URL sends to, if it names one (a self-hosted service); None for vendor URLs."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SELF_HOSTED_APPRISE_SCHEMES:
        return None  # vendor URLs carry tokens where a host would be ("tgram://123:ABC/…"): no URL parsing
    host = _split(url).hostname
    if not host:
        return None
    if scheme in ("ntfy", "ntfys") and "." not in host and ":" not in host and host != "localhost":
        return None  # ntfy://topic: a topic on the public ntfy.sh
    return host


async def check_apprise_url(url: str, policy: TargetPolicy, resolver: Resolver = system_resolver) -> Resolved | None:
    """Check the host of an Apprise URL that names one; None when it goes to a vendor's public service."""
    host = apprise_host(url)
    if host is None:
        return None
    parts = _split(url)
    secure = parts.scheme.lower().endswith("s")
    return await _check_host(host, parts.port or (443 if secure else 80), policy, resolver)


def redact_url(url: str) -> str:
    """`url` with anything that may be a secret masked: credentials, path segments and query values, long tokens.

    Keeps the scheme and host (or for vendor URLs, the first 4 characters of the token) so the owner recognises it.
    """
    try:
        parts = urlsplit(url)
        port = parts.port if parts.scheme.lower() in SELF_HOSTED_APPRISE_SCHEMES | {"http", "https"} else None
    except ValueError:
        return f"{url.split('://', 1)[0]}://…" if "://" in url else "***"
    host = parts.hostname or ""
    if host and parts.scheme.lower() not in SELF_HOSTED_APPRISE_SCHEMES | {"http", "https"}:
        host = f"{host[:4]}…" if len(host) > 4 else "…"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"***@{netloc}"
    path = "/…" if parts.path.strip("/") else parts.path
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{netloc}{path}{query}"
