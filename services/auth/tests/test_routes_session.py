"""The browser session: POST/DELETE /auth/session and POST /auth/session/refresh, the cookie and its Origin check."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from auth_testkit import PASSWORD, AppFactory, assert_error, bearer, client_for, register
from session_testkit import EMAIL, ORIGIN, call, session_cookie_of

from pricealert.auth.settings import AuthSettings


async def sign_in(client: httpx.AsyncClient, email: str = EMAIL) -> tuple[dict[str, Any], str]:
    """Register and open a browser session: the answer's body and the cookie's value."""
    await register(client, email)
    response = await call(client, "POST", "/auth/session", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    value, _ = session_cookie_of(response)
    return response.json(), value


async def test_signing_in_sets_the_cookie_and_answers_only_the_access_token(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    await register(client, EMAIL)
    response = await call(client, "POST", "/auth/session", json={"email": EMAIL, "password": PASSWORD})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == settings.access_token_ttl_s
    value, attributes = session_cookie_of(response)
    assert attributes == {
        "Path": "/auth/session",
        "Max-Age": str(settings.refresh_token_ttl_s),
        "HttpOnly": "",
        "SameSite": "Strict",
    }
    assert jwt.decode(value, options={"verify_signature": False})["type"] == "refresh"
    assert value not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert (await client.get("/auth/me", headers=bearer(body["access_token"]))).json()["email"] == EMAIL


async def test_wrong_credentials_answer_as_login_does_and_set_no_cookie(client: httpx.AsyncClient) -> None:
    await register(client, EMAIL)
    response = await call(client, "POST", "/auth/session", json={"email": EMAIL, "password": "wrong password"})
    assert_error(response, 401, "invalid_credentials")
    assert "set-cookie" not in response.headers
    assert_error(await call(client, "POST", "/auth/session", json={"email": EMAIL}), 422, "validation_error")
    assert_error(await call(client, "POST", "/auth/session", content=b"{"), 422, "validation_error")
    form = await call(client, "POST", "/auth/session", data={"username": EMAIL, "password": PASSWORD})
    assert_error(form, 415, "unsupported_media_type")


async def test_failures_count_against_the_same_login_limits(app_factory: AppFactory) -> None:
    async with app_factory(login_max_failures_account_address=2) as app, client_for(app) as client:
        await register(client, EMAIL)
        for _ in range(2):
            wrong = {"email": EMAIL, "password": "wrong password"}
            assert_error(await call(client, "POST", "/auth/session", json=wrong), 401, "invalid_credentials")
        right = {"email": EMAIL, "password": PASSWORD}
        assert_error(await client.post("/auth/login", json=right), 429, "too_many_login_attempts")
        assert_error(await call(client, "POST", "/auth/session", json=right), 429, "too_many_login_attempts")


async def test_refresh_rotates_the_cookie_and_a_replayed_one_ends_the_session(client: httpx.AsyncClient) -> None:
    _, first = await sign_in(client)

    response = await call(client, "POST", "/auth/session/refresh", cookie=first)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"access_token", "token_type", "expires_in"}
    second, attributes = session_cookie_of(response)
    assert second != first and attributes["Path"] == "/auth/session" and "HttpOnly" in attributes
    assert (await client.get("/auth/me", headers=bearer(response.json()["access_token"]))).status_code == 200

    replay = await call(client, "POST", "/auth/session/refresh", cookie=first)
    assert_error(replay, 401, "token_revoked")
    assert session_cookie_of(replay) == ("", {**attributes, "Max-Age": "0"})
    # The replay ended the whole login session: the browser's newer cookie is dead too.
    assert_error(await call(client, "POST", "/auth/session/refresh", cookie=second), 401, "token_revoked")


async def test_refresh_without_a_cookie_is_no_session_and_a_bad_one_is_cleared(client: httpx.AsyncClient) -> None:
    missing = await call(client, "POST", "/auth/session/refresh")
    assert_error(missing, 401, "no_session")
    assert "set-cookie" not in missing.headers
    assert_error(await call(client, "POST", "/auth/session/refresh", cookie=""), 401, "no_session")
    for bad in ("garbage", "x" * 5000):
        response = await call(client, "POST", "/auth/session/refresh", cookie=bad)
        assert_error(response, 401, "invalid_token")
        assert session_cookie_of(response)[0] == ""
        assert session_cookie_of(response)[1]["Max-Age"] == "0"


async def test_signing_out_revokes_the_session_and_clears_the_cookie(client: httpx.AsyncClient) -> None:
    _, cookie = await sign_in(client)

    response = await call(client, "DELETE", "/auth/session", cookie=cookie)

    assert response.status_code == 204 and response.content == b""
    value, attributes = session_cookie_of(response)
    assert (value, attributes["Max-Age"], attributes["Path"]) == ("", "0", "/auth/session")
    assert_error(await call(client, "POST", "/auth/session/refresh", cookie=cookie), 401, "token_revoked")
    again = await call(client, "DELETE", "/auth/session")  # no cookie left: nothing to end, still cleared
    assert again.status_code == 204 and session_cookie_of(again)[1]["Max-Age"] == "0"


ROUTES = [("POST", "/auth/session"), ("POST", "/auth/session/refresh"), ("DELETE", "/auth/session")]
FOREIGN = [
    "http://evil.example",
    "null",
    "https://testserver",
    "http://testserver:8080",
    "http://testserver.evil.example",
    "http://testserver/",
    "http://testserver/auth/session",
    "http://user@testserver",
    "testserver",
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_session_route_needs_this_sites_origin(client: httpx.AsyncClient, method: str, path: str) -> None:
    _, cookie = await sign_in(client)
    body = {"json": {"email": EMAIL, "password": PASSWORD}} if path == "/auth/session" and method == "POST" else {}

    refused = [await call(client, method, path, cookie=cookie, origin=None, **body)]
    assert_error(refused[0], 403, "origin_required")
    for origin in FOREIGN:
        refused.append(await call(client, method, path, cookie=cookie, origin=origin, **body))
        assert_error(refused[-1], 403, "origin_not_allowed")
    assert all("set-cookie" not in r.headers and cookie not in r.text for r in refused)
    # Nothing happened: the cookie still works, and the page's own origin is served.
    assert (await call(client, "POST", "/auth/session/refresh", cookie=cookie)).status_code == 200


async def test_app_urls_origin_is_accepted_too(app_factory: AppFactory) -> None:
    async with app_factory(app_url="https://alerts.example.com/app/") as app, client_for(app) as client:
        await register(client, EMAIL)
        credentials = {"email": EMAIL, "password": PASSWORD}
        for origin in ("https://alerts.example.com", "https://ALERTS.example.com:443", ORIGIN):
            assert (await call(client, "POST", "/auth/session", origin=origin, json=credentials)).status_code == 200
        foreign = await call(client, "POST", "/auth/session", origin="http://localhost:8000", json=credentials)
        assert_error(foreign, 403, "origin_not_allowed")


async def test_the_cookie_is_never_a_bearer_credential(client: httpx.AsyncClient) -> None:
    _, cookie = await sign_in(client)
    for path in ("/auth/me", "/auth/users"):
        response = await call(client, "GET", path, cookie=cookie)
        assert_error(response, 401, "not_authenticated")
    # Nor may the refresh token be used as an access token.
    assert_error(await client.get("/auth/me", headers=bearer(cookie)), 401)


async def test_the_token_routes_set_no_cookie(client: httpx.AsyncClient) -> None:
    await register(client, EMAIL)
    pair = await call(client, "POST", "/auth/login", json={"email": EMAIL, "password": PASSWORD})
    refreshed = await call(client, "POST", "/auth/refresh", json={"refresh_token": pair.json()["refresh_token"]})
    me = await call(client, "GET", "/auth/me", headers=bearer(refreshed.json()["access_token"]))
    logout = await call(client, "POST", "/auth/logout", json={"refresh_token": refreshed.json()["refresh_token"]})
    for response in (pair, refreshed, me, logout):
        assert response.status_code in (200, 204), response.text
        assert "set-cookie" not in response.headers
        assert "access-control-allow-origin" not in response.headers
