"""A NUL character anywhere in a request is a 422 in the error shape, on SQLite and on Postgres alike
(Postgres refuses NUL in text, which used to surface as a 500)."""

from __future__ import annotations

from typing import Any

import httpx
from auth_testkit import PASSWORD, assert_error, register

NUL = "\u0000"


def _body_cases() -> list[dict[str, Any]]:
    base = {"email": "nul@example.com", "password": PASSWORD, "username": "nul"}
    return [
        {**base, "email": f"nul{NUL}@example.com"},
        {**base, "email": f"nul@example.com{NUL}"},
        {**base, "password": f"{PASSWORD}{NUL}"},
        {**base, "password": f"{NUL}{PASSWORD}"},
        {**base, "username": f"nu{NUL}l"},
        {**base, "username": NUL},
        {**base, f"extra{NUL}": "x"},
    ]


async def test_nul_in_registration_fields_is_422(client: httpx.AsyncClient) -> None:
    answers = [await client.post("/auth/register", json=body) for body in _body_cases()]

    for answer in answers:
        assert_error(answer, 422, "validation_error")
    nobody = await client.post("/auth/login", json={"email": "nul@example.com", "password": PASSWORD})
    assert nobody.status_code == 401  # no account was created


async def test_nul_in_login_fields_is_422(client: httpx.AsyncClient) -> None:
    await register(client, "login-nul@example.com")
    json_bodies = [
        {"email": f"login-nul@example.com{NUL}", "password": PASSWORD},
        {"email": "login-nul@example.com", "password": f"{PASSWORD}{NUL}"},
    ]
    forms = [
        {"username": f"login-nul@example.com{NUL}", "password": PASSWORD},
        {"username": "login-nul@example.com", "password": f"{PASSWORD}{NUL}"},
    ]

    answers = [await client.post("/auth/login", json=body) for body in json_bodies]
    answers += [await client.post("/auth/login", data=form) for form in forms]
    answers.append(await client.post("/auth/refresh", json={"refresh_token": f"x{NUL}y"}))

    for answer in answers:
        assert_error(answer, 422, "validation_error")


async def test_nul_in_paths_and_query_parameters_is_422(client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/auth/users/%00"),
        await client.get("/auth/users", params={"page": NUL}),
        await client.patch("/auth/users/a%00b", json={"is_active": False}),
        await client.get("/auth/me", params={"x": f"a{NUL}"}),
    ]

    for answer in answers:
        assert_error(answer, 422, "validation_error")


async def test_text_that_only_looks_like_a_nul_is_just_text(client: httpx.AsyncClient) -> None:
    """An escaped backslash before `u0000` is the six characters, and `%00` in JSON is three."""
    await register(client, "literal@example.com", password="back\\u0000slash %00 pass")
    login = await client.post(
        "/auth/login", json={"email": "literal@example.com", "password": "back\\u0000slash %00 pass"}
    )
    assert login.status_code == 200, login.text
