"""ADMIN_EMAIL creates the admin once; later starts only set its password and never touch another account."""

from __future__ import annotations

import structlog
from auth_testkit import AppFactory, assert_error, bearer, client_for, login, register
from fastapi import FastAPI

from pricealert.auth.models import User
from pricealert.auth.repository import UserRepository
from pricealert.auth.security import PasswordHasher
from pricealert.auth.state import AuthState

ADMIN = "root@example.com"
ADMIN_PASSWORD = "admin password 123"


async def _user(app: FastAPI, email: str) -> User:
    state: AuthState = app.state.auth
    async with state.sessions() as session:
        user = await UserRepository(session).get_by_email(email)
    assert user is not None
    return user


async def test_an_account_registered_first_at_the_admin_address_is_left_alone(app_factory: AppFactory) -> None:
    async with app_factory() as app, client_for(app) as http:
        await register(http, "boss@example.com", password="squatter password 1")
    for _ in range(2):
        with structlog.testing.capture_logs() as logs:
            async with (
                app_factory(admin_email="Boss@Example.com", admin_password=ADMIN_PASSWORD) as app,
                client_for(app) as http,
            ):
                tokens = await login(http, "boss@example.com", "squatter password 1")  # password unchanged
                me = (await http.get("/auth/me", headers=bearer(tokens["access_token"]))).json()
                assert me["is_admin"] is False
                assert_error(
                    await http.post("/auth/login", json={"email": "boss@example.com", "password": ADMIN_PASSWORD}), 401
                )
                assert not (await _user(app, "boss@example.com")).created_by_bootstrap
        [refused] = [line for line in logs if line["event"] == "auth.admin.bootstrap_refused"]
        assert refused["log_level"] == "error" and refused["email"] == "boss@example.com"


async def test_a_deactivated_or_demoted_admin_stays_so_after_a_restart(app_factory: AppFactory) -> None:
    async with app_factory(admin_email=ADMIN, admin_password=ADMIN_PASSWORD) as app, client_for(app) as http:
        root = bearer((await login(http, ADMIN, ADMIN_PASSWORD))["access_token"])
        await http.post(
            "/auth/users",
            headers=root,
            json={"email": "second@example.com", "password": ADMIN_PASSWORD, "is_admin": True},
        )
        second = bearer((await login(http, "second@example.com", ADMIN_PASSWORD))["access_token"])
        root_id = (await http.get("/auth/me", headers=root)).json()["id"]
        response = await http.patch(f"/auth/users/{root_id}", headers=second, json={"is_admin": False})
        assert response.status_code == 200, response.text
    async with app_factory(admin_email=ADMIN, admin_password=ADMIN_PASSWORD) as app, client_for(app) as http:
        root = bearer((await login(http, ADMIN, ADMIN_PASSWORD))["access_token"])
        assert (await http.get("/auth/me", headers=root)).json()["is_admin"] is False
        second = bearer((await login(http, "second@example.com", ADMIN_PASSWORD))["access_token"])
        await http.patch(f"/auth/users/{root_id}", headers=second, json={"is_active": False})
    async with app_factory(admin_email=ADMIN, admin_password=ADMIN_PASSWORD) as app, client_for(app) as http:
        assert_error(
            await http.post("/auth/login", json={"email": ADMIN, "password": ADMIN_PASSWORD}), 403, "account_disabled"
        )


async def test_a_new_admin_password_applies_and_ends_the_admins_sessions(app_factory: AppFactory) -> None:
    async with app_factory(admin_email=ADMIN, admin_password=ADMIN_PASSWORD) as app, client_for(app) as http:
        old = await login(http, ADMIN, ADMIN_PASSWORD)
    async with app_factory(admin_email=ADMIN, admin_password="a brand new one 456") as app, client_for(app) as http:
        assert_error(await http.post("/auth/login", json={"email": ADMIN, "password": ADMIN_PASSWORD}), 401)
        assert_error(await http.post("/auth/refresh", json={"refresh_token": old["refresh_token"]}), 401)
        tokens = await login(http, ADMIN, "a brand new one 456")
        assert (await http.get("/auth/me", headers=bearer(tokens["access_token"]))).json()["is_admin"] is True


async def test_an_admin_from_before_the_marker_is_adopted_only_with_the_admin_password(
    app_factory: AppFactory,
) -> None:
    async with app_factory() as app:
        state: AuthState = app.state.auth
        hasher = PasswordHasher(4)
        async with state.sessions() as session:  # what the bootstrap of earlier versions left
            users = UserRepository(session)
            await users.add(User(email=ADMIN, password_hash=hasher.hash_sync(ADMIN_PASSWORD), is_admin=True))
            await users.add(
                User(email="promoted@example.com", password_hash=hasher.hash_sync("theirs 12345"), is_admin=True)
            )
            await session.commit()
    async with app_factory(admin_email=ADMIN, admin_password=ADMIN_PASSWORD) as app:
        assert (await _user(app, ADMIN)).created_by_bootstrap
    async with app_factory(admin_email="promoted@example.com", admin_password=ADMIN_PASSWORD) as app:
        user = await _user(app, "promoted@example.com")
        assert not user.created_by_bootstrap and await hasher.verify("theirs 12345", user.password_hash)
