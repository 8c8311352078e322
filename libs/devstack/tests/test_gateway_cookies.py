"""The development gateway keeps no cookies: a Set-Cookie an upstream sends one browser (the session's refresh
token) goes to that browser only, never along with another client's request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pricealert.devstack.gateway import GatewaySettings, create_app
from pricealert.testsupport.httpupstream import QuietHandler, serving

SEEN_COOKIES: list[str | None] = []


class SessionUpstream(QuietHandler):
    def do_POST(self) -> None:
        SEEN_COOKIES.append(self.headers.get("cookie"))
        self.send_response(200)
        if self.path == "/auth/session":
            self.send_header("set-cookie", "pricealert_refresh=secret-of-ada; Path=/auth/session; HttpOnly")
        self.send_header("content-length", "0")
        self.end_headers()


@pytest.fixture
def upstream() -> Iterator[str]:
    with serving(SessionUpstream) as url:
        yield url


async def test_a_cookie_set_for_one_client_never_reaches_the_upstream_with_another(upstream: str) -> None:
    SEEN_COOKIES.clear()
    app = create_app(GatewaySettings(auth_url=upstream, alerts_url=upstream))
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as ada,
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as mallory,
    ):
        signed_in = await ada.post("/auth/session")
        stranger = await mallory.post("/auth/session/refresh")
        own = await ada.post("/auth/session/refresh")

    assert "secret-of-ada" in signed_in.headers["set-cookie"]  # passed on to the browser that signed in
    assert SEEN_COOKIES == [None, None, "pricealert_refresh=secret-of-ada"]
    assert stranger.status_code == 200 and "set-cookie" not in stranger.headers
    assert own.status_code == 200
