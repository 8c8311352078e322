"""The browser session behind the gateway: the scheme it reports, Secure cookies in production, the Origin rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from auth_testkit import PASSWORD, AppFactory, client_for, make_settings, register, running_app
from pydantic import ValidationError
from session_testkit import EMAIL, ORIGIN, call, session_cookie_of
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from pricealert.auth.keys import DiskKeyRing, generate_key
from pricealert.auth.origins import check_origin, origin_of
from pricealert.common.errors import Forbidden

CREDENTIALS = {"email": EMAIL, "password": PASSWORD}


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://LocalHost:8000/", "http://localhost:8000"),
        ("https://alerts.example.com:443/app?x=1#y", "https://alerts.example.com"),
        ("http://alerts.example.com:80", "http://alerts.example.com"),
        ("https://alerts.example.com:8443", "https://alerts.example.com:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("ftp://alerts.example.com", None),
        ("alerts.example.com", None),
        ("http://", None),
        ("http://user:pw@alerts.example.com", None),
        ("http://alerts.example.com:99999", None),
        ("null", None),
    ],
)
def test_origin_of_a_url(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_check_origin_names_the_two_refusals() -> None:
    check_origin("http://a.example", own="http://a.example", allowed=None)
    check_origin("https://b.example", own="http://a.example", allowed="https://b.example")
    for origin, code in [
        (None, "origin_required"),
        ("  ", "origin_required"),
        ("http://c.example", "origin_not_allowed"),
    ]:
        with pytest.raises(Forbidden) as refused:
            check_origin(origin, own="http://a.example", allowed="https://b.example")
        assert refused.value.code == code
    with pytest.raises(Forbidden):  # no Host header: only APP_URL's origin would do, and there is none
        check_origin("http://a.example", own=None, allowed=None)


def test_app_url_must_name_a_site(database_url: str, redis_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="APP_URL"):
        make_settings(database_url, redis_url, tmp_path, app_url="localhost:8000")


async def test_the_scheme_is_the_one_the_trusted_proxy_reports(app_factory: AppFactory) -> None:
    async with app_factory(app_url="http://localhost:8000") as app, client_for(app) as direct:
        await register(direct, EMAIL)
        # What uvicorn runs in front of the app with AUTH_FORWARDED_ALLOW_IPS (the gateway's address).
        for proxy, trusted in (("127.0.0.1", True), ("10.9.9.9", False)):
            behind = ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1")  # type: ignore[arg-type]
            transport = httpx.ASGITransport(app=behind, client=(proxy, 50000))  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                answers = {
                    origin: await call(
                        client,
                        "POST",
                        "/auth/session",
                        origin=origin,
                        json=CREDENTIALS,
                        headers={"x-forwarded-proto": "https"},
                    )
                    for origin in ("https://testserver", ORIGIN)
                }
            statuses = {origin: response.status_code for origin, response in answers.items()}
            assert statuses == (
                {"https://testserver": 200, ORIGIN: 403} if trusted else {"https://testserver": 403, ORIGIN: 200}
            ), statuses


async def test_production_cookies_are_secure(postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    generate_key(keys)  # what `pricealert keys ensure` leaves: a signing key and the root
    DiskKeyRing(
        keys, max_token_ttl=timedelta(days=1), access_token_ttl=timedelta(minutes=15), allow_generate=True
    ).load()
    settings = make_settings(postgres_url, redis_url, tmp_path, env="production", bcrypt_rounds=10)

    async with running_app(settings) as app, client_for(app) as client:
        await register(client, EMAIL)
        opened = await call(client, "POST", "/auth/session", json=CREDENTIALS)
        value, attributes = session_cookie_of(opened)
        refreshed = await call(client, "POST", "/auth/session/refresh", cookie=value)
        closed = await call(client, "DELETE", "/auth/session", cookie=session_cookie_of(refreshed)[0])

    assert attributes["Secure"] == ""
    for response in (refreshed, closed):
        assert response.status_code in (200, 204), response.text
        assert "Secure" in session_cookie_of(response)[1]


async def test_openapi_documents_the_session_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    session, refresh = paths["/auth/session"], paths["/auth/session/refresh"]
    assert set(session) == {"post", "delete"} and set(refresh) == {"post"}
    for operation in (session["post"], session["delete"], refresh["post"]):
        assert {"401", "403"} <= set(operation["responses"])
        assert any(p["in"] == "header" and p["name"] == "origin" for p in operation["parameters"])
    assert "application/json" in session["post"]["requestBody"]["content"]
    assert any(p["in"] == "cookie" and p["name"] == "pricealert_refresh" for p in refresh["post"]["parameters"])
    assert set(session["post"]["responses"]["200"]["content"]["application/json"]["schema"].values()) == {
        "#/components/schemas/SessionToken"
    }
