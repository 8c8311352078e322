"""POST /auth/register: creating accounts, one answer whatever is taken, and refusing bad input with a clear 4xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from auth_testkit import PASSWORD, assert_error, register, stored_user


async def test_register_answers_202_without_user_or_tokens_and_stores_an_unverified_user(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "alice@example.com", "password": PASSWORD, "username": "alice"}
    )
    assert response.status_code == 202, response.text
    assert set(response.json()) == {"status", "message"}
    assert response.json()["status"] == "verification_sent"
    body = await stored_user(client, "alice@example.com")
    assert body is not None
    assert set(body) == {"id", "email", "username", "is_admin", "is_active", "email_verified", "created_at"}
    assert body["email"] == "alice@example.com"
    assert body["username"] == "alice"
    assert body["is_admin"] is False and body["is_active"] is True and body["email_verified"] is False


async def test_register_stores_email_lower_cased(client: httpx.AsyncClient) -> None:
    body = await register(client, "Bob.Smith@Example.COM")
    assert body["email"] == "bob.smith@example.com"


async def test_duplicate_email_creates_nothing_case_insensitively(client: httpx.AsyncClient) -> None:
    first = await register(client, "carol@example.com")
    response = await client.post("/auth/register", json={"email": "CAROL@example.com", "password": "other pass 1"})
    assert response.status_code == 202, response.text
    assert await stored_user(client, "carol@example.com") == first


async def test_duplicate_username_creates_nothing_case_insensitively(client: httpx.AsyncClient) -> None:
    await register(client, "d1@example.com", username="Dave")
    response = await client.post(
        "/auth/register", json={"email": "d2@example.com", "password": PASSWORD, "username": "dave"}
    )
    assert response.status_code == 202, response.text
    assert await stored_user(client, "d2@example.com") is None


async def test_unicode_email_is_accepted(client: httpx.AsyncClient) -> None:
    body = await register(client, "Jörg.Müller@Exämple.de")
    assert body["email"] == body["email"].lower()
    assert "jörg" in body["email"]


async def test_password_of_exactly_128_characters_is_accepted(client: httpx.AsyncClient) -> None:
    await register(client, "long@example.com", password="é" * 128)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"email": "not-an-email", "password": PASSWORD}, id="invalid-email"),
        pytest.param({"email": "", "password": PASSWORD}, id="empty-email"),
        pytest.param({"email": "a@example.com", "password": "short77"}, id="password-7"),
        pytest.param({"email": "a@example.com", "password": "x" * 129}, id="password-129"),
        pytest.param({"email": "a@example.com", "password": "x" * 10_000}, id="password-10000"),
        pytest.param({"email": "a@example.com", "password": " " * 12}, id="password-blank"),
        pytest.param({"email": "a@example.com"}, id="password-missing"),
        pytest.param({"password": PASSWORD}, id="email-missing"),
        pytest.param({"email": "a@example.com", "password": 12345678}, id="password-int"),
        pytest.param({"email": ["a@example.com"], "password": PASSWORD}, id="email-list"),
        pytest.param({"email": "a@example.com", "password": None}, id="password-null"),
        pytest.param({"email": "a@example.com", "password": PASSWORD, "is_admin": True}, id="extra-is-admin"),
        pytest.param({"email": "a@example.com", "password": PASSWORD, "username": "x"}, id="username-short"),
        pytest.param(
            {"email": "a@example.com", "password": PASSWORD, "username": "a'; DROP TABLE users;--"}, id="username-sql"
        ),
        pytest.param({"email": "'; DROP TABLE users; --", "password": PASSWORD}, id="email-sql"),
        pytest.param({"email": "a" * 300 + "@example.com", "password": PASSWORD}, id="email-too-long"),
        pytest.param([1, 2, 3], id="body-list"),
        pytest.param("just a string", id="body-string"),
    ],
)
async def test_invalid_registration_is_422(client: httpx.AsyncClient, payload: Any) -> None:
    response = await client.post("/auth/register", json=payload)
    error = assert_error(response, 422, "validation_error")
    assert isinstance(error["details"], list) and error["details"]


async def test_invalid_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(response, 422, "validation_error")


async def test_sql_injection_in_a_valid_email_is_just_data(client: httpx.AsyncClient) -> None:
    email = "o'reilly--1=1@example.com"
    body = await register(client, email)
    assert body["email"] == email
    again = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert again.status_code == 202, again.text
