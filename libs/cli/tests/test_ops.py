"""`pricealert db migrate`, `keys ...` and `users create-admin` on real databases (SQLite and Postgres)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_testkit import json_of, run_cli
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncConnection

from pricealert.auth.keys import generate_key
from pricealert.auth.models import User
from pricealert.auth.repository import UserRepository
from pricealert.auth.rootkey import load_root_key
from pricealert.auth.security import PasswordHasher
from pricealert.common.db import create_engine, session_factory
from pricealert.common.keytrust import load_root_public_key

PASSWORD = "a-long-admin-passphrase"


@pytest.fixture
def auth_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """What the auth container gives the CLI: its database, key directory and bcrypt cost."""
    return {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_KEY_DIR": str(tmp_path / "keys"),
        "AUTH_BCRYPT_ROUNDS": "4",
        "ENV": "test",
    }


async def _user(database_url: str, email: str) -> User | None:
    engine = create_engine(database_url, application_name="cli-test")
    try:
        async with session_factory(engine)() as session:
            return await UserRepository(session).get_by_email(email)
    finally:
        await engine.dispose()


async def _tables(database_url: str) -> set[str]:
    engine = create_engine(database_url, application_name="cli-test")

    def names(connection: object) -> set[str]:
        return set(inspect(connection).get_table_names())

    try:
        async with engine.connect() as connection:
            assert isinstance(connection, AsyncConnection)
            return await connection.run_sync(names)
    finally:
        await engine.dispose()


async def test_create_admin_creates_then_is_idempotent(database_url: str, auth_env: dict[str, str]) -> None:
    created = await run_cli(
        "users", "create-admin", "--email", "Root@Example.com", "--password", PASSWORD, "--json", env=auth_env
    )
    again = await run_cli(
        "users",
        "create-admin",
        "--email",
        "root@example.com",
        "--password",
        "another-passphrase",
        "--json",
        env=auth_env,
    )

    assert created.exit_code == 0, created.output
    assert json_of(created)["action"] == "created" and json_of(created)["email"] == "root@example.com"
    assert json_of(again)["action"] == "unchanged" and json_of(again)["user_id"] == json_of(created)["user_id"]
    user = await _user(database_url, "root@example.com")
    assert user is not None and user.is_admin and user.is_active
    assert await PasswordHasher(4).verify(PASSWORD, user.password_hash)  # an existing password is kept


async def test_create_admin_refuses_an_account_it_did_not_create(database_url: str, auth_env: dict[str, str]) -> None:
    engine = create_engine(database_url, application_name="cli-test")
    await run_cli("db", "migrate", "auth", env=auth_env)
    async with session_factory(engine)() as session:
        await UserRepository(session).add(
            User(
                email="ada@example.com",
                password_hash=PasswordHasher(4).hash_sync("old-password-1"),
                is_admin=False,
                is_active=False,
            )
        )
        await session.commit()
    await engine.dispose()

    result = await run_cli(
        "users", "create-admin", "--email", "ada@example.com", "--password", PASSWORD, "--reset-password", env=auth_env
    )

    assert result.exit_code == 1
    assert "refused" in result.stderr and "left alone" in result.stderr and "Traceback" not in result.output
    user = await _user(database_url, "ada@example.com")
    assert user is not None and not user.is_admin and not user.is_active
    assert await PasswordHasher(4).verify("old-password-1", user.password_hash)


async def test_create_admin_resets_the_password_of_the_admin_it_created(
    database_url: str, auth_env: dict[str, str]
) -> None:
    await run_cli("users", "create-admin", "--email", "root@example.com", "--password", PASSWORD, env=auth_env)

    result = await run_cli(
        "users",
        "create-admin",
        "--email",
        "root@example.com",
        "--password",
        "another-passphrase",
        "--reset-password",
        env=auth_env,
    )

    assert result.exit_code == 0, result.output
    assert "root@example.com: password reset" in result.stdout
    user = await _user(database_url, "root@example.com")
    assert user is not None and user.is_admin and user.created_by_bootstrap
    assert await PasswordHasher(4).verify("another-passphrase", user.password_hash)


async def test_create_admin_prompts_for_the_password(sqlite_url: str, tmp_path: Path) -> None:
    env = {"AUTH_DATABASE_URL": sqlite_url, "AUTH_KEY_DIR": str(tmp_path), "AUTH_BCRYPT_ROUNDS": "4"}

    result = await run_cli(
        "users", "create-admin", "--email", "ops@example.com", env=env, input=f"{PASSWORD}\n{PASSWORD}\n"
    )

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.stdout
    assert await _user(sqlite_url, "ops@example.com") is not None


@pytest.mark.parametrize(("email", "password"), [("not-an-email", PASSWORD), ("ops@example.com", "short")])
async def test_create_admin_refuses_what_the_auth_service_refuses(
    sqlite_url: str, tmp_path: Path, email: str, password: str
) -> None:
    env = {"AUTH_DATABASE_URL": sqlite_url, "AUTH_KEY_DIR": str(tmp_path), "AUTH_BCRYPT_ROUNDS": "4"}

    result = await run_cli("users", "create-admin", "--email", email, "--password", password, env=env)

    assert result.exit_code == 1
    assert "refused" in result.stderr and "Traceback" not in result.output


async def test_migrate_both_databases_is_idempotent(tmp_path: Path) -> None:
    auth_url, alerts_url = f"sqlite:///{tmp_path / 'auth.db'}", f"sqlite:///{tmp_path / 'alerts.db'}"
    env = {"AUTH_DATABASE_URL": auth_url, "ALERTS_DATABASE_URL": alerts_url, "AUTH_KEY_DIR": str(tmp_path)}

    first = await run_cli("db", "migrate", "--json", env=env)
    second = await run_cli("db", "migrate", "auth", "alerts", env=env)

    assert first.exit_code == 0, first.output
    assert json_of(first) == {"migrated": {"auth": auth_url, "alerts": alerts_url}}
    assert second.exit_code == 0, second.output
    assert {"users", "alembic_version_auth"} <= await _tables(auth_url)
    assert {"alerts", "alembic_version_alerts"} <= await _tables(alerts_url)


async def test_migrate_hides_the_database_password_and_rejects_unknown_services(postgres_url: str) -> None:
    result = await run_cli("db", "migrate", "alerts", env={"ALERTS_DATABASE_URL": postgres_url})
    unknown = await run_cli("db", "migrate", "evaluator")

    assert result.exit_code == 0, result.output
    password = postgres_url.split("://", 1)[1].split("@")[0].partition(":")[2]
    assert not password or password not in result.stdout
    assert unknown.exit_code == 2 and "has no database" in unknown.stderr


async def test_keys_ensure_generates_once_even_in_production(tmp_path: Path) -> None:
    env = {
        "AUTH_KEY_DIR": str(tmp_path / "keys"),
        "ENV": "production",
        "REDIS_URL": "redis://redis:6379/0",
        "AUTH_DATABASE_URL": "postgresql://auth@postgres/auth",
    }

    first = await run_cli("keys", "ensure", "--json", env=env)
    second = await run_cli("keys", "ensure", "--json", env=env)

    assert first.exit_code == 0, first.output
    assert json_of(first)["generated"] is True and json_of(first)["root_generated"] is True
    root_public = str(tmp_path / "keys" / "root" / "public.pem")
    assert json_of(second) == {
        "kid": json_of(first)["kid"],
        "generated": False,
        "root_generated": False,
        "root_public_key": root_public,
    }
    assert [p.name for p in (tmp_path / "keys").glob("*.pem")] == [f"{json_of(first)['kid']}.pem"]
    assert (tmp_path / "keys" / "root" / "private.pem").stat().st_mode & 0o077 == 0


async def test_keys_ensure_gives_a_v1_key_dir_a_root_and_exports_its_public_half(tmp_path: Path) -> None:
    v1 = generate_key(tmp_path / "keys")  # v1 left a signing key and no root
    env = {"AUTH_KEY_DIR": str(tmp_path / "keys")}

    result = await run_cli("keys", "ensure", "--export-root", str(tmp_path / "trust" / "root.pem"), "--json", env=env)

    assert result.exit_code == 0, result.output
    assert json_of(result) == {
        "kid": v1.kid,
        "generated": False,
        "root_generated": True,
        "root_public_key": str(tmp_path / "trust" / "root.pem"),
    }
    exported = load_root_public_key(tmp_path / "trust" / "root.pem")
    assert exported.public_bytes_raw() == load_root_key(tmp_path / "keys").public_key().public_bytes_raw()


async def test_keys_rotate_list_and_retire(tmp_path: Path) -> None:
    env = {"AUTH_KEY_DIR": str(tmp_path / "keys")}
    old = generate_key(tmp_path / "keys", now=datetime.now(UTC) - timedelta(minutes=1)).kid

    rotated = await run_cli("keys", "rotate", "--json", env=env)
    new = json_of(rotated)["kid"]
    listed = await run_cli("keys", "list", "--json", env=env)
    newest = await run_cli("keys", "retire", new, env=env)
    retired = await run_cli("keys", "retire", old, "--json", env=env)
    unknown = await run_cli("keys", "retire", "no-such-kid", env=env)
    after = await run_cli("keys", "list", "--json", env=env)

    assert [(k["kid"], k["state"]) for k in json_of(listed)] == [(old, "published"), (new, "signing")]
    assert newest.exit_code == 1 and "rotate" in newest.stderr
    assert retired.exit_code == 0 and json_of(retired)["moved_to"] == str(tmp_path / "keys" / "retired" / f"{old}.pem")
    assert unknown.exit_code == 1 and "no signing key" in unknown.stderr and "Traceback" not in unknown.output
    assert [(k["kid"], k["state"]) for k in json_of(after)] == [(new, "signing"), (old, "retired")]
