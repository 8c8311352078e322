"""pytest fixtures with real servers: Redis, Postgres, PgBouncer, SMTP (testcontainers when Docker answers)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import pytest
import structlog
from redis.asyncio import Redis

from pricealert.common.redisconn import connect
from pricealert.devstack.pgbouncer import PgBouncerServer, pgbouncer_binary
from pricealert.devstack.servers import PostgresServer, RedisServer, temp_dir
from pricealert.devstack.smtp import MailboxServer


def docker_engine_answers() -> bool:
    """Whether a Docker engine (not just the client) is reachable."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def _servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def redis_server_url(_servers: ExitStack) -> str:
    """URL of one real Redis for the whole session."""
    if docker_engine_answers():
        from testcontainers.redis import RedisContainer

        container: Any = _servers.enter_context(RedisContainer("redis:7-alpine"))
        return f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
    directory = temp_dir("pricealert-redis-")
    _servers.callback(shutil.rmtree, directory, ignore_errors=True)
    server = RedisServer(directory).start()
    _servers.callback(server.stop)
    return server.url


@pytest.fixture(scope="session")
def postgres_admin_url(_servers: ExitStack) -> str:
    """URL of the maintenance database of one real Postgres for the whole session."""
    if docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        container: Any = _servers.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
        return str(container.get_connection_url())
    directory = temp_dir("pricealert-pg-")
    _servers.callback(shutil.rmtree, directory, ignore_errors=True)  # after the stop (LIFO): GBs of test databases
    server = PostgresServer(directory).start()
    _servers.callback(server.stop)
    return server.url()


@pytest.fixture
async def redis_url(redis_server_url: str) -> AsyncIterator[str]:
    """The session Redis, emptied before the test so each test starts clean."""
    client = connect(redis_server_url)
    await client.flushall()
    await client.aclose()
    yield redis_server_url


@pytest.fixture
def own_redis_url() -> Iterator[str]:
    """A Redis of the test's own, for a test that changes the server (maxmemory, a restart) the session shares."""
    directory = temp_dir("pricealert-redis-own-")
    server = RedisServer(directory).start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the (emptied) session Redis."""
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A Postgres server of this test's own, started, for tests that stop and restart it (removed after)."""
    directory = temp_dir("pricealert-pg-own-")  # not under tmp_path: the postgres account must read it
    server = PostgresServer(directory).start()
    try:
        yield server
    finally:
        with suppress(subprocess.CalledProcessError):  # the test may have left it stopped
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> str:
    """A fresh, empty Postgres database for this test."""
    from pricealert.devstack.servers import create_database

    return create_database(postgres_admin_url, f"test_{uuid.uuid4().hex[:12]}")


def _pgbouncer(upstream: str) -> PgBouncerServer:
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer); the PgBouncer variants skip")
    return PgBouncerServer(temp_dir("pricealert-pgbouncer-"), upstream).start()


@pytest.fixture(scope="session")
def pgbouncer_server(_servers: ExitStack, postgres_admin_url: str) -> PgBouncerServer:
    """One real PgBouncer in transaction mode in front of the session Postgres (skips if not installed)."""
    server = _pgbouncer(postgres_admin_url)
    _servers.callback(server.stop)
    return server


@pytest.fixture
def pgbouncer_url(postgres_url: str, pgbouncer_server: PgBouncerServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's fresh Postgres database (`postgres_url`) reached through the session PgBouncer.

    Sets DATABASE_POOLER=pgbouncer for the test, as a deployment behind PgBouncer does: the settings it builds
    read it.
    """
    monkeypatch.setenv("DATABASE_POOLER", "pgbouncer")
    return pgbouncer_server.url_for(postgres_url)


@pytest.fixture
def own_pgbouncer(postgres_admin_url: str) -> Iterator[PgBouncerServer]:
    """A PgBouncer of this test's own in front of the session Postgres, for tests that stop it (skips if absent)."""
    server = _pgbouncer(postgres_admin_url)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for this test."""
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database, once on SQLite and once on Postgres."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def smtp_server() -> Iterator[MailboxServer]:
    """A real SMTP server on a loopback port; `.mails` holds what it accepted, `.handler.fail_next` fails."""
    server = MailboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def plain_tracebacks() -> Iterator[None]:
    """structlog rendering exceptions as the services do (common/logging.py): its default renders rich tracebacks
    with every frame's locals, which holds the event loop for seconds per logged failure, past a test's timings."""
    config = structlog.get_config()
    renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(processors=[*config["processors"][:-1], renderer])
    yield
    structlog.configure(**config)
