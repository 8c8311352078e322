"""Helpers of the browser-session tests: requests as the page sends them, the Set-Cookie header parsed."""

from __future__ import annotations

from typing import Any

import httpx

ORIGIN = "http://testserver"  # the test client's own origin (its Host header is testserver)
EMAIL = "browser@example.com"


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """Name, value and attributes (as written, `True` ones as "") of one Set-Cookie header."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attributes = {key: val for key, _, val in (part.partition("=") for part in rest)}
    return name, value, attributes


def session_cookie_of(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The value and attributes of the one session cookie a response sets."""
    [header] = response.headers.get_list("set-cookie")
    name, value, attributes = parse_set_cookie(header)
    assert name == "pricealert_refresh"
    return value, attributes


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    cookie: str | None = None,
    origin: str | None = ORIGIN,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    """One request as the page sends it, with exactly the cookie given (the client's own jar stays out of it)."""
    client.cookies.clear()
    headers = {**(headers or {}), **({"origin": origin} if origin is not None else {})}
    if cookie is not None:
        headers["cookie"] = f"pricealert_refresh={cookie}"
    return await client.request(method, path, headers=headers, **kw)
