"""Which site a browser request comes from: the Origin check of the cookie-authenticated routes."""

from __future__ import annotations

from urllib.parse import urlsplit

from pricealert.common.errors import Forbidden

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, lower-cased, without its default port; None if it names no site."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def check_origin(origin: str | None, *, own: str | None, allowed: str | None) -> None:
    """Refuse (403) a request whose Origin header is missing or names neither this site nor the configured one."""
    if origin is None or not origin.strip():
        raise Forbidden("This route needs the Origin header a browser sends.", code="origin_required")
    # An Origin header is scheme://host[:port] and nothing else: a path, a query or "null" names no site.
    bare = origin.strip()
    named = origin_of(bare) if not any(mark in bare.partition("//")[2] for mark in "/?#") else None
    if named is None or named not in {own, allowed} - {None}:
        raise Forbidden("Requests from another site are refused.", code="origin_not_allowed")
