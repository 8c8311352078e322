"""POST /auth/refresh (rotation, reuse detection) and POST /auth/logout."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from auth_testkit import assert_error, bearer, register_and_login
from fastapi import FastAPI

from pricealert.auth.security import sign_token
from pricealert.auth.state import AuthState
from pricealert.common.tokens import TokenType


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_refresh_answers_a_new_pair_and_revokes_the_old_token(client: httpx.AsyncClient) -> None:
    first = await register_and_login(client, "rot@example.com")
    response = await _refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/auth/me", headers=bearer(second["access_token"]))).status_code == 200
    third = await _refresh(client, second["refresh_token"])
    assert third.status_code == 200, third.text


async def test_reusing_a_rotated_token_closes_the_whole_session(client: httpx.AsyncClient) -> None:
    first = await register_and_login(client, "reuse@example.com")
    second = (await _refresh(client, first["refresh_token"])).json()
    assert_error(await _refresh(client, first["refresh_token"]), 401, "token_revoked")
    # The thief's replay also kills the legitimate holder's newer token of the same session.
    assert_error(await _refresh(client, second["refresh_token"]), 401, "token_revoked")


async def test_reuse_does_not_touch_other_sessions(client: httpx.AsyncClient) -> None:
    phone = await register_and_login(client, "two@example.com")
    laptop_response = await client.post(
        "/auth/login", json={"email": "two@example.com", "password": "correct horse battery"}
    )
    laptop = laptop_response.json()
    await _refresh(client, phone["refresh_token"])
    assert_error(await _refresh(client, phone["refresh_token"]), 401, "token_revoked")
    assert (await _refresh(client, laptop["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_let_at_most_one_win(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client, "race@example.com")
    responses = await asyncio.gather(*[_refresh(client, tokens["refresh_token"]) for _ in range(4)])
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) <= 1
    assert set(statuses) <= {200, 401}


async def test_refresh_token_carries_refresh_type_and_new_jti(client: httpx.AsyncClient) -> None:
    first = await register_and_login(client, "jti@example.com")
    second = (await _refresh(client, first["refresh_token"])).json()
    old = jwt.decode(first["refresh_token"], options={"verify_signature": False})
    new = jwt.decode(second["refresh_token"], options={"verify_signature": False})
    assert old["type"] == new["type"] == "refresh"
    assert old["jti"] != new["jti"]


async def test_refresh_with_bad_bodies_is_422(client: httpx.AsyncClient) -> None:
    for payload in ({}, {"refresh_token": 5}, {"refresh_token": ""}, {"refresh_token": "x" * 5000}, [1]):
        assert_error(await client.post("/auth/refresh", json=payload), 422, "validation_error")


async def test_logout_answers_204_and_the_token_stops_working(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client, "bye@example.com")
    response = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await _refresh(client, tokens["refresh_token"]), 401, "token_revoked")


async def test_logout_is_idempotent(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client, "twice@example.com")
    for _ in range(2):
        response = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert response.status_code == 204


async def test_logout_ends_the_session_including_rotated_tokens(client: httpx.AsyncClient) -> None:
    first = await register_and_login(client, "family@example.com")
    second = (await _refresh(client, first["refresh_token"])).json()
    assert (await client.post("/auth/logout", json={"refresh_token": second["refresh_token"]})).status_code == 204
    assert_error(await _refresh(client, second["refresh_token"]), 401)


async def test_logout_refuses_an_access_token_and_garbage(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client, "wrong@example.com")
    assert_error(await client.post("/auth/logout", json={"refresh_token": tokens["access_token"]}), 401)
    assert_error(await client.post("/auth/logout", json={"refresh_token": "garbage"}), 401)
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 200


async def test_logout_with_an_expired_token_is_204(app: FastAPI, client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client, "old@example.com")
    me = (await client.get("/auth/me", headers=bearer(tokens["access_token"]))).json()
    state: AuthState = app.state.auth
    import uuid

    expired = sign_token(
        state.keyring.signing_key,
        subject=uuid.UUID(me["id"]),
        email=me["email"],
        token_type=TokenType.REFRESH,
        ttl=timedelta(seconds=60),
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    response = await client.post("/auth/logout", json={"refresh_token": expired.token})
    assert response.status_code == 204


async def test_refresh_needs_no_access_token_but_ignores_one(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client, "noauth@example.com")
    response = await client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, headers=bearer("garbage")
    )
    assert response.status_code == 200
