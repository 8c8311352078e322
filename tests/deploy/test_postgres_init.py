"""deploy/postgres/init-databases.sh run as the postgres image runs it, on a fresh cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from deploy_testkit import DEPLOY

from pricealert.devstack.servers import PostgresServer, temp_dir

SCRIPT = DEPLOY / "postgres" / "init-databases.sh"


@pytest.fixture(scope="module")
def fresh_postgres() -> Iterator[PostgresServer]:
    """An empty cluster, as the image's first start sees it (the session's Postgres is shared by tests)."""
    server = PostgresServer(temp_dir("pricealert-pg-init-")).start()
    yield server
    server.stop()


def _psql_dir() -> str:
    found = shutil.which("psql") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), None)
    assert found is not None, "psql not found (it comes with the postgresql package the tests use)"
    return os.path.dirname(found)


def _run_script(server: PostgresServer, **extra: str) -> subprocess.CompletedProcess[str]:
    psql_dir = _psql_dir()
    env = {
        "PATH": f"{psql_dir}:/usr/bin:/bin",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(server.port),
        "POSTGRES_USER": server.user,
        "POSTGRES_DB": "postgres",
        **extra,
    }
    return subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, timeout=60, env=env)


def test_the_script_refuses_to_run_without_the_role_passwords(fresh_postgres: PostgresServer) -> None:
    result = _run_script(fresh_postgres, AUTH_DB_PASSWORD="x")

    assert result.returncode != 0
    assert "ALERTS_DB_PASSWORD must be set" in result.stderr


async def test_each_service_gets_its_own_role_and_database(fresh_postgres: PostgresServer) -> None:
    result = _run_script(fresh_postgres, AUTH_DB_PASSWORD="auth-secret", ALERTS_DB_PASSWORD="alerts'secret")
    assert result.returncode == 0, result.stderr

    admin = await asyncpg.connect(fresh_postgres.url())
    try:
        owners = dict(
            await admin.fetch(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ('auth', 'alerts')"
            )
        )
    finally:
        await admin.close()
    assert owners == {"auth": "auth", "alerts": "alerts"}

    host = f"127.0.0.1:{fresh_postgres.port}"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(f"postgresql://auth@{host}/alerts")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(f"postgresql://alerts@{host}/auth")

    # The roles own their databases: the migrations (what compose's migrate service runs) succeed.
    env = {
        **os.environ,
        "AUTH_DATABASE_URL": f"postgresql://auth:auth-secret@{host}/auth",
        "ALERTS_DATABASE_URL": f"postgresql://alerts:x@{host}/alerts",
        "AUTH_KEY_DIR": "/nonexistent",
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "pricealert.cli", "db", "migrate"], capture_output=True, text=True, timeout=120, env=env
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "auth-secret" not in migrated.stdout and "auth:***@" in migrated.stdout
