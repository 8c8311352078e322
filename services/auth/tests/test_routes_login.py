"""POST /auth/login (JSON and OAuth2 form) and GET /auth/me."""

from __future__ import annotations

import uuid

import httpx
import jwt
import pytest
from auth_testkit import PASSWORD, AppFactory, assert_error, bearer, client_for, login, register
from fastapi import FastAPI

from pricealert.auth.models import User
from pricealert.auth.repository import UserRepository
from pricealert.auth.state import AuthState
from pricealert.common.tokens import AUDIENCE, ISSUER


async def test_login_with_json_answers_a_token_pair(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await register(client, "alice@example.com")
    tokens = await login(client, "alice@example.com")
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    state: AuthState = app.state.auth
    key = state.keyring.signing_key
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"] == key.kid
    claims = jwt.decode(tokens["access_token"], key.public_pem, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == user["id"]
    assert claims["email"] == "alice@example.com"
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    assert uuid.UUID(hex=claims["jti"])
    refresh = jwt.decode(tokens["refresh_token"], key.public_pem, algorithms=["EdDSA"], audience=AUDIENCE)
    assert refresh["type"] == "refresh" and refresh["jti"] != claims["jti"]


async def test_login_with_the_oauth2_form(client: httpx.AsyncClient) -> None:
    await register(client, "form@example.com")
    response = await client.post(
        "/auth/login", data={"username": "form@example.com", "password": PASSWORD, "grant_type": "password"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"


async def test_login_with_a_multipart_form(client: httpx.AsyncClient) -> None:
    await register(client, "multi@example.com")
    response = await client.post(
        "/auth/login", files={"username": (None, "multi@example.com"), "password": (None, PASSWORD)}
    )
    assert response.status_code == 200, response.text


async def test_login_email_is_case_insensitive(client: httpx.AsyncClient) -> None:
    await register(client, "case@example.com")
    await login(client, "  CASE@Example.com ")


async def test_wrong_password_and_unknown_email_get_the_same_answer(client: httpx.AsyncClient) -> None:
    await register(client, "known@example.com")
    wrong = await client.post("/auth/login", json={"email": "known@example.com", "password": "wrong password"})
    unknown = await client.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong password"})
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")


async def test_unknown_email_still_checks_a_bcrypt_hash(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bcrypt

    calls: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)
    response = await client.post("/auth/login", json={"email": "ghost@example.com", "password": "whatever1"})
    assert_error(response, 401, "invalid_credentials")
    assert len(calls) == 1
    assert calls[0].startswith(b"$2b$04$")  # same cost as real hashes


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        pytest.param({"email": "x@example.com"}, 422, id="password-missing"),
        pytest.param({"email": "x@example.com", "password": 5}, 422, id="password-int"),
        pytest.param({"email": "x@example.com", "password": "p" * 10_000}, 422, id="password-10000"),
        pytest.param({"email": "' OR '1'='1", "password": "' OR '1'='1"}, 401, id="sql-injection"),
        pytest.param({"email": "x@example.com", "password": "p", "extra": 1}, 422, id="extra-field"),
        pytest.param(["x@example.com", "p"], 422, id="body-list"),
        pytest.param(None, 422, id="body-null"),
    ],
)
async def test_hostile_login_bodies_get_a_clear_4xx(client: httpx.AsyncClient, payload: object, status: int) -> None:
    response = await client.post("/auth/login", json=payload)
    assert_error(response, status)


async def test_login_invalid_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", content=b'{"email": ', headers={"content-type": "application/json"})
    assert_error(response, 422, "validation_error")


async def test_login_deeply_nested_json_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", content=b'{"a":' * 5000, headers={"content-type": "application/json"})
    assert_error(response, 422, "validation_error")


async def test_login_non_utf8_body_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
    assert_error(response, 422, "validation_error")


async def test_login_form_missing_password_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", data={"username": "x@example.com"})
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["body", "password"]


async def test_login_with_another_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", content=b"email=x", headers={"content-type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")


async def test_me_answers_the_current_user(client: httpx.AsyncClient) -> None:
    user = await register(client, "me@example.com", username="me_myself")
    tokens = await login(client, "me@example.com")
    response = await client.get("/auth/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.text
    assert response.json() == user


async def test_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/me")
    assert_error(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_login_rehashes_a_password_made_with_another_cost(app_factory: AppFactory) -> None:
    async with app_factory() as first, client_for(first) as http:
        await register(http, "rehash@example.com")
    async with app_factory(bcrypt_rounds=5) as second, client_for(second) as http:
        await login(http, "rehash@example.com")
        state: AuthState = second.state.auth
        async with state.sessions() as session:
            user = await UserRepository(session).get_by_email("rehash@example.com")
            assert isinstance(user, User)
            assert user.password_hash.startswith("$2b$05$")
        await login(http, "rehash@example.com")
