"""Health, readiness, migrations, settings from the environment and the OpenAPI document."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pricealert.auth.bootstrap import MIGRATIONS, VERSION_TABLE
from pricealert.auth.settings import AuthSettings
from pricealert.common.db import upgrade_database


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}


async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_services_own_address(client: httpx.AsyncClient) -> None:
    """A redirect's Location would name the Host the service saw: behind a gateway, its internal address."""
    answers = [
        await client.get("/auth/me/"),
        await client.post("/auth/login/", json={}),
        await client.get("/auth/users/"),
    ]

    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(404, "not_found")] * 3
    assert [a.headers.get("location") for a in answers] == [None] * 3


async def test_not_ready_while_redis_is_unreachable(settings: AuthSettings) -> None:
    from auth_testkit import client_for

    from pricealert.auth.app import create_app
    from pricealert.devstack.ports import free_port

    dead = AuthSettings(_env_file=None, **{**settings.model_dump(), "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    app = create_app(dead)
    async with app.router.lifespan_context(app), client_for(app) as http:
        await asyncio.wait_for(app.state.auth.database_ready.wait(), 30)
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
        assert response.status_code == 503 and response.json() == {"status": "not_ready"}


def test_migrations_are_idempotent(database_url: str) -> None:
    upgrade_database(database_url, MIGRATIONS, VERSION_TABLE)
    upgrade_database(database_url, MIGRATIONS, VERSION_TABLE)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///generic.db")
    monkeypatch.setenv("AUTH_PORT", "9999")
    monkeypatch.setenv("AUTH_KEY_DIR", str(tmp_path))
    monkeypatch.setenv("AUTH_ACCESS_TOKEN_TTL_S", "60")
    monkeypatch.setenv("AUTH_BCRYPT_ROUNDS", "5")
    settings = AuthSettings(_env_file=None)
    assert settings.database_url == "sqlite:///generic.db"
    assert (settings.port, settings.key_dir, settings.access_token_ttl_s) == (9999, tmp_path, 60)
    assert settings.refresh_token_ttl_s == 14 * 24 * 3600 and settings.bcrypt_rounds == 5
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgresql://auth@db/auth")
    assert AuthSettings(_env_file=None).database_url == "postgresql://auth@db/auth"


async def test_openapi_documents_both_login_bodies(app: FastAPI, client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    content = schema["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    assert {
        "/auth/register",
        "/auth/refresh",
        "/auth/logout",
        "/auth/me",
        "/auth/users",
        "/auth/users/{user_id}",
    } <= set(schema["paths"])
    assert "OAuth2PasswordBearer" in schema["components"]["securitySchemes"]
