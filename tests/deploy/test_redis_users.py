"""The compose Redis and migrate step on a real redis-server: the admin, `default` off, the users saved, restarts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_testkit import (
    DUMMY_SECRETS,
    ComposeRedis,
    load_compose,
    on_loopback,
    run_migrate_acl_step,
    service_environment,
)
from redis.exceptions import AuthenticationError

from pricealert.common import acl
from pricealert.common.redisconn import connect

SERVICES = load_compose()["services"]


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[ComposeRedis]:
    server = ComposeRedis(tmp_path / "data", DUMMY_SECRETS).start()
    yield server
    server.stop()


def compose_url(name: str, port: int) -> str:
    """The REDIS_URL compose gives service `name`, on the test's port."""
    return on_loopback(str(service_environment(SERVICES[name], DUMMY_SECRETS)["REDIS_URL"]), port)


async def whoami(url: str) -> str:
    """The user `url` logs in as (admin only: ACL WHOAMI), raising AuthenticationError when it cannot log in."""
    client = connect(url)
    try:
        reply = await client.acl_whoami()
        return reply.decode() if isinstance(reply, bytes) else str(reply)
    finally:
        await client.aclose()


async def logs_in(url: str) -> bool:
    """Whether `url`'s user and password are accepted (PING, which every user may send)."""
    client = connect(url)
    try:
        return bool(await client.ping())
    except AuthenticationError:
        return False
    finally:
        await client.aclose()


async def test_a_client_that_names_no_user_gets_nothing(compose_redis: ComposeRedis) -> None:
    port = compose_redis.port

    with pytest.raises(AuthenticationError):  # NOAUTH: `default` is off from the first start on
        await whoami(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(AuthenticationError):  # and no password opens it
        await whoami(f"redis://default:{DUMMY_SECRETS['REDIS_PASSWORD']}@127.0.0.1:{port}/0")
    assert (
        await whoami(f"redis://{acl.ADMIN_USER}:{DUMMY_SECRETS['REDIS_PASSWORD']}@127.0.0.1:{port}/0") == acl.ADMIN_USER
    )
    assert compose_redis.healthcheck().returncode == 0


async def test_the_migrate_step_makes_each_service_user_and_saves_it(
    compose_redis: ComposeRedis, tmp_path: Path
) -> None:
    port = compose_redis.port
    assert not await logs_in(compose_url("ingest", port))

    result = run_migrate_acl_step(port, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "default: switched off" in result.stdout and "saved to the ACL file" in result.stdout
    for role in acl.SERVICES:
        assert await logs_in(compose_url(role.name, port)), role.name
    assert await logs_in(compose_url("migrate", port))  # the operator CLI's own user
    saved = (compose_redis.directory / "users.acl").read_text()
    assert all(f"user {role.user} on " in saved for role in acl.ROLES)
    assert DUMMY_SECRETS["REDIS_PASSWORD_AUTH"] not in saved  # only hashes are stored


async def test_users_survive_a_restart_and_the_admin_password_follows_the_environment(
    compose_redis: ComposeRedis, tmp_path: Path
) -> None:
    assert run_migrate_acl_step(compose_redis.port, tmp_path).returncode == 0
    compose_redis.stop()
    rotated = {**DUMMY_SECRETS, "REDIS_PASSWORD": "a-new-admin-secret"}
    restarted = ComposeRedis(compose_redis.directory, rotated, port=compose_redis.port).start()
    try:
        port = restarted.port
        for role in acl.SERVICES:
            assert await logs_in(compose_url(role.name, port)), role.name
        assert await whoami(f"redis://{acl.ADMIN_USER}:a-new-admin-secret@127.0.0.1:{port}/0") == acl.ADMIN_USER
        with pytest.raises(AuthenticationError):
            await whoami(f"redis://{acl.ADMIN_USER}:{DUMMY_SECRETS['REDIS_PASSWORD']}@127.0.0.1:{port}/0")
        with pytest.raises(AuthenticationError):
            await whoami(f"redis://127.0.0.1:{port}/0")
        assert restarted.healthcheck().returncode == 0
        # The migrate step runs again at the next `up`: same users, same outcome.
        assert run_migrate_acl_step(port, tmp_path, rotated).returncode == 0
    finally:
        restarted.stop()


async def test_the_acl_step_refuses_to_switch_off_the_user_it_is_connected_as(tmp_path: Path) -> None:
    from pricealert.devstack.servers import RedisServer

    server = RedisServer(tmp_path / "plain").start()  # `default` with no password: the admin of a bare Redis
    try:
        env = {
            **os.environ,
            **{k: v for k, v in DUMMY_SECRETS.items() if k.startswith("REDIS_PASSWORD_")},
            "REDIS_URL": server.url,
            "ENV": "development",
        }
        result = subprocess.run(
            [sys.executable, "-m", "pricealert.cli", "redis", "acl", "apply", "--disable-default"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "lock this admin out" in result.stderr
        client = connect(server.url)
        try:
            assert await client.ping()  # `default` untouched, and nothing else done either
            assert await client.acl_getuser(acl.AUTH.user) is None
        finally:
            await client.aclose()
    finally:
        server.stop()
