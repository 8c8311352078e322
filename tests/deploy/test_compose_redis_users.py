"""deploy/compose.yaml's Redis: one ACL user per service, the admin, heartbeats, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_testkit import (
    SERVICES,
    SETTINGS,
    WORKERS,
    compose_environment,
    redis_url_of,
)
from deploy_testkit import (
    DUMMY_SECRETS,
    service_environment,
)

from pricealert.cli.redisacl import RedisAclSettings
from pricealert.common import acl, names


@pytest.mark.parametrize("name", sorted(SETTINGS.keys() - {"docs"}))
def test_each_service_connects_to_redis_as_its_own_user(name: str) -> None:
    environment = compose_environment(name)
    role = acl.role(name.removesuffix("-worker"))  # the alerts worker is the alerts service

    assert environment["REDIS_URL"] == redis_url_of(role)
    assert "REDIS_PASSWORD" not in environment and "REDIS_ADMIN_URL" not in environment
    for other in acl.ROLES:
        assert (DUMMY_SECRETS[other.password_variable] in str(environment)) == (other.name == role.name)


def test_the_docs_gateway_has_no_redis_credential() -> None:
    environment = compose_environment("docs")

    assert environment["REDIS_URL"] == ""
    assert not any(
        DUMMY_SECRETS[variable] in str(environment)
        for variable in DUMMY_SECRETS
        if variable.startswith("REDIS_PASSWORD")
    )


def test_only_redis_and_the_migrate_step_know_the_admin_password() -> None:
    admin = DUMMY_SECRETS["REDIS_PASSWORD"]
    knowing = {name for name, service in SERVICES.items() if admin in str(service_environment(service, DUMMY_SECRETS))}
    assert knowing == {"redis", "migrate"}


def test_the_migrate_step_sets_every_redis_user_as_the_admin_after_the_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    environment = compose_environment("migrate")
    command = SERVICES["migrate"]["command"][-1]
    assert command.index("pricealert db migrate") < command.index("pricealert redis acl apply --disable-default")
    assert environment["REDIS_URL"] == redis_url_of(acl.CLI)  # the operator CLI's own user
    assert environment["REDIS_ADMIN_URL"] == f"redis://{acl.ADMIN_USER}:{DUMMY_SECRETS['REDIS_PASSWORD']}@redis:6379/0"
    for variable, value in environment.items():
        monkeypatch.setenv(variable, str(value))

    settings = RedisAclSettings()  # production: every password set, long enough and different

    assert settings.passwords() == {role.name: DUMMY_SECRETS[role.password_variable] for role in acl.ROLES}


def test_each_consumers_heartbeat_key_is_in_its_own_redis_users_keys() -> None:
    for service in WORKERS.values():
        assert acl.role(service).may_write(names.health_key(service, "host-1"))


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_workers_start_once_the_migrate_step_made_their_redis_user(name: str) -> None:
    assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_redis_makes_the_admin_and_switches_default_off_at_every_start() -> None:
    redis = SERVICES["redis"]
    environment = compose_environment("redis")
    script = redis["command"][2]
    assert environment["REDIS_ADMIN_USER"] == acl.ADMIN_USER
    assert environment["REDIS_ACL_FILE"].startswith("/data/")  # on the redis-data volume: users survive restarts
    assert "--aclfile" in script and "--requirepass" not in script  # Redis ignores requirepass with an ACL file
    assert "user default off" in script
    assert '--user "$$REDIS_ADMIN_USER"' in redis["healthcheck"]["test"][1]


def test_redis_keeps_an_append_only_file_fsynced_every_second() -> None:
    redis = SERVICES["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command  # streams must never be evicted
    assert "redis-data:/data" in redis["volumes"]
    assert "healthcheck" in redis
