"""Admin-only user management (the admin bootstrapped from the environment: test_admin_bootstrap)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from auth_testkit import PASSWORD, AppFactory, assert_error, bearer, client_for, login, register

ADMIN = "root@example.com"
ADMIN_PASSWORD = "admin password 123"


@pytest.fixture
async def admin_client(app_factory: AppFactory) -> Any:
    """A client of an app started with ADMIN_EMAIL / ADMIN_PASSWORD, and the admin's tokens."""
    async with app_factory(admin_email=ADMIN, admin_password=ADMIN_PASSWORD) as app, client_for(app) as http:
        tokens = await login(http, ADMIN, ADMIN_PASSWORD)
        yield http, bearer(tokens["access_token"])


async def test_admin_from_the_environment_can_log_in(admin_client: Any) -> None:
    http, headers = admin_client
    me = (await http.get("/auth/me", headers=headers)).json()
    assert me["email"] == ADMIN and me["is_admin"] is True


async def test_listing_users_is_paginated(admin_client: Any) -> None:
    http, headers = admin_client
    for index in range(4):
        await register(http, f"user{index}@example.com")
    first = (await http.get("/auth/users", params={"page_size": 2}, headers=headers)).json()
    assert first["total"] == 5 and first["page"] == 1 and first["page_size"] == 2
    assert [user["email"] for user in first["items"]] == [ADMIN, "user0@example.com"]
    assert first["previous"] is None
    assert first["next"] == "/auth/users?page=2&page_size=2"
    last = (await http.get("/auth/users", params={"page": 3, "page_size": 2}, headers=headers)).json()
    assert [user["email"] for user in last["items"]] == ["user3@example.com"]
    assert last["next"] is None and last["previous"] == "/auth/users?page=2&page_size=2"
    beyond = (await http.get("/auth/users", params={"page": 9, "page_size": 2}, headers=headers)).json()
    assert beyond["items"] == [] and beyond["next"] is None
    assert beyond["previous"] == "/auth/users?page=3&page_size=2"
    default = (await http.get("/auth/users", headers=headers)).json()
    assert default["page_size"] == 20 and len(default["items"]) == 5


@pytest.mark.parametrize(
    "params", [{"page_size": 101}, {"page_size": 0}, {"page": 0}, {"page": "x"}, {"page_size": "1; DROP TABLE users"}]
)
async def test_bad_pagination_is_422(admin_client: Any, params: dict[str, Any]) -> None:
    http, headers = admin_client
    assert_error(await http.get("/auth/users", params=params, headers=headers), 422, "validation_error")


async def test_user_management_needs_an_admin(client: httpx.AsyncClient) -> None:
    await register(client, "pleb@example.com")
    headers = bearer((await login(client, "pleb@example.com"))["access_token"])
    assert_error(await client.get("/auth/users"), 401)
    assert_error(await client.get("/auth/users", headers=headers), 403, "admin_required")
    assert_error(
        await client.post("/auth/users", headers=headers, json={"email": "x@example.com", "password": PASSWORD}), 403
    )
    assert_error(await client.patch(f"/auth/users/{uuid.uuid4()}", headers=headers, json={"is_admin": True}), 403)


async def test_admin_creates_an_admin(admin_client: Any) -> None:
    http, headers = admin_client
    response = await http.post(
        "/auth/users", headers=headers, json={"email": "Second@Example.com", "password": PASSWORD, "is_admin": True}
    )
    assert response.status_code == 201, response.text
    assert response.json()["is_admin"] is True and response.json()["email"] == "second@example.com"
    second = bearer((await login(http, "second@example.com"))["access_token"])
    assert (await http.get("/auth/users", headers=second)).status_code == 200
    assert_error(
        await http.post("/auth/users", headers=headers, json={"email": "second@example.com", "password": PASSWORD}),
        409,
        "email_taken",
    )


async def test_deactivated_user_cannot_log_in_refresh_or_call_me(admin_client: Any) -> None:
    http, headers = admin_client
    user = await register(http, "leaver@example.com")
    tokens = await login(http, "leaver@example.com")
    response = await http.patch(f"/auth/users/{user['id']}", headers=headers, json={"is_active": False})
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert_error(
        await http.post("/auth/login", json={"email": "leaver@example.com", "password": PASSWORD}),
        403,
        "account_disabled",
    )
    assert_error(
        await http.post("/auth/login", json={"email": "leaver@example.com", "password": "wrong one"}),
        401,
        "invalid_credentials",
    )
    assert_error(await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    assert_error(await http.get("/auth/me", headers=bearer(tokens["access_token"])), 403, "account_disabled")
    await http.patch(f"/auth/users/{user['id']}", headers=headers, json={"is_active": True})
    await login(http, "leaver@example.com")


async def test_inactive_user_created_by_admin_cannot_log_in(admin_client: Any) -> None:
    http, headers = admin_client
    await http.post(
        "/auth/users", headers=headers, json={"email": "dormant@example.com", "password": PASSWORD, "is_active": False}
    )
    assert_error(
        await http.post("/auth/login", json={"email": "dormant@example.com", "password": PASSWORD}),
        403,
        "account_disabled",
    )


async def test_promote_and_demote(admin_client: Any) -> None:
    http, headers = admin_client
    user = await register(http, "climber@example.com")
    promoted = await http.patch(f"/auth/users/{user['id']}", headers=headers, json={"is_admin": True})
    assert promoted.json()["is_admin"] is True
    demoted = await http.patch(f"/auth/users/{user['id']}", headers=headers, json={"is_admin": False})
    assert demoted.json()["is_admin"] is False
    fetched = await http.get(f"/auth/users/{user['id']}", headers=headers)
    assert fetched.json() == demoted.json()


async def test_admin_cannot_lock_themselves_out(admin_client: Any) -> None:
    http, headers = admin_client
    me = (await http.get("/auth/me", headers=headers)).json()
    for change in ({"is_active": False}, {"is_admin": False}):
        assert_error(
            await http.patch(f"/auth/users/{me['id']}", headers=headers, json=change), 409, "cannot_modify_self"
        )


async def test_patch_errors(admin_client: Any) -> None:
    http, headers = admin_client
    user = await register(http, "target@example.com")
    assert_error(
        await http.patch(f"/auth/users/{uuid.uuid4()}", headers=headers, json={"is_active": False}),
        404,
        "user_not_found",
    )
    assert_error(await http.patch("/auth/users/not-a-uuid", headers=headers, json={"is_active": False}), 422)
    assert_error(await http.get(f"/auth/users/{uuid.uuid4()}", headers=headers), 404)
    for body in ({"is_active": "no"}, {"is_active": 0}, {"email": "x@example.com"}, {"is_admin": None, "x": 1}):
        assert_error(await http.patch(f"/auth/users/{user['id']}", headers=headers, json=body), 422)
