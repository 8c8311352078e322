"""`pricealert redis acl apply`: exact users from the admin, passwords rotated, stale users dropped, `default` off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_testkit import json_of, run_cli
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError
from redisacl_testkit import PASSWORDS, AclRedis, apply_users, user_url

from pricealert.cli import redisacl
from pricealert.common import acl
from pricealert.common.redisconn import connect
from pricealert.devstack.servers import RedisServer

ENV = {role.password_variable: PASSWORDS[role.name] for role in acl.ROLES}


@pytest.fixture
def bare_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own whose `default` user is the admin, as a fresh server has it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def test_every_role_has_its_password_setting() -> None:
    fields = {str(field.validation_alias) for field in redisacl.RedisAclSettings.model_fields.values()}
    assert {role.password_variable for role in acl.ROLES} <= fields


async def test_apply_sets_users_exactly_rotates_passwords_and_drops_stale_users(
    acl_redis: AclRedis, admin: Redis
) -> None:
    await admin.execute_command("ACL", "SETUSER", "pricealert-retired", "on", ">x", "~*", "+@all")  # type: ignore[no-untyped-call]
    await admin.execute_command("ACL", "SETUSER", acl.AUTH.user, "+flushall")  # type: ignore[no-untyped-call]
    before = connect(acl_redis.url_of(acl.AUTH))
    assert await before.ping()  # a connection opened with the old password
    rotated = {**PASSWORDS, "auth": "a-brand-new-auth-password"}
    try:
        report = await redisacl.apply(admin, rotated)

        assert report.deleted == ["pricealert-retired"] and not report.saved
        assert await before.ping()  # stays logged in until its service restarts with the new URL
        with pytest.raises(NoPermissionError):  # what was added by hand is gone
            await before.flushall()
        with pytest.raises(AuthenticationError):
            await connect(acl_redis.url_of(acl.AUTH)).ping()
        fresh = connect(user_url(acl_redis.url, acl.AUTH.user, rotated["auth"]))
        assert await fresh.ping()
        await fresh.aclose()
    finally:
        await before.aclose()
        await apply_users(acl_redis.url)


async def test_the_cli_command_applies_as_the_admin_url(acl_redis: AclRedis) -> None:
    # REDIS_URL is the CLI's own user, which may not change users; REDIS_ADMIN_URL wins for this command.
    env = {**ENV, "REDIS_URL": acl_redis.url_of(acl.CLI), "REDIS_ADMIN_URL": acl_redis.url}

    result = await run_cli("redis", "acl", "apply", "--json", env=env)

    assert result.exit_code == 0, result.output
    report = json_of(result)
    assert report["users"] == [role.user for role in acl.ROLES]
    assert report["selectors"] == acl_redis.server.selectors and report["default_disabled"] is False

    as_cli = await run_cli("redis", "acl", "apply", env={**ENV, "REDIS_URL": acl_redis.url_of(acl.CLI)})
    assert as_cli.exit_code == 1 and "must name an admin user" in as_cli.stderr


async def test_every_password_must_be_set(acl_redis: AclRedis) -> None:
    env = {**ENV, "REDIS_ADMIN_URL": acl_redis.url, "REDIS_PASSWORD_NOTIFIER": "", "REDIS_PASSWORD_CLI": ""}

    result = await run_cli("redis", "acl", "apply", env=env)

    assert result.exit_code == 1
    assert "REDIS_PASSWORD_NOTIFIER, REDIS_PASSWORD_CLI" in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"REDIS_PASSWORD_INGEST": "short"}, "REDIS_PASSWORD_INGEST: at least 16 characters"),
        ({"REDIS_PASSWORD_INGEST": PASSWORDS["evaluator"]}, "must differ"),
    ],
)
def test_production_refuses_short_or_shared_passwords(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable, value in {**ENV, **change, "ENV": "production", "REDIS_URL": "redis://x:y@redis:6379/0"}.items():
        monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=message):
        redisacl.RedisAclSettings()


async def test_disable_default_switches_it_off_but_not_for_its_own_connection(bare_redis: RedisServer) -> None:
    admin = connect(bare_redis.url)
    try:
        with pytest.raises(redisacl.AclRefused, match="lock this admin out"):
            await redisacl.apply(admin, PASSWORDS, disable_default=True)
        await admin.execute_command("ACL", "SETUSER", acl.ADMIN_USER, "on", ">admin-pw", "~*", "&*", "+@all")  # type: ignore[no-untyped-call]
    finally:
        await admin.aclose()
    admin = connect(user_url(bare_redis.url, acl.ADMIN_USER, "admin-pw"))
    try:
        report = await redisacl.apply(admin, PASSWORDS, disable_default=True)

        assert report.default_disabled and acl.ADMIN_USER not in report.deleted
        assert await admin.ping()
    finally:
        await admin.aclose()
    anonymous = connect(bare_redis.url)
    with pytest.raises(AuthenticationError):  # NOAUTH: a client must name its user now
        await anonymous.ping()
    await anonymous.aclose()
