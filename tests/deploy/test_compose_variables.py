"""deploy/compose.yaml's variables against the settings classes: production-valid, documented, no secret defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from compose_testkit import (
    SERVICES,
    SETTINGS,
    all_settings_variables,
    compose_environment,
    env_names,
    redis_url_of,
)
from deploy_testkit import (
    DUMMY_SECRETS,
    ENV_EXAMPLE,
    compose_text,
    interpolate,
    referenced_variables,
    service_environment,
)
from pydantic_settings import BaseSettings

from pricealert.alerts.settings import AlertsSettings
from pricealert.auth.keys import generate_key
from pricealert.auth.rootkey import ensure_root_key, write_public_key
from pricealert.auth.settings import AuthSettings
from pricealert.common import acl
from pricealert.common.settings import ServiceSettings


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_variable_is_one_the_settings_class_reads(name: str) -> None:
    environment = compose_environment(name)
    unknown = set(environment) - env_names(SETTINGS[name])
    assert not unknown, f"{name} is given variables its settings ignore: {sorted(unknown)}"
    assert {"ENV", "LOG_JSON", "REDIS_URL"} <= set(environment)
    assert "CONSUMER_NAME" not in environment  # the host name: unique per replica, stable across restarts


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_environment_makes_valid_production_settings(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    environment = {k: v for k, v in compose_environment(name).items() if v is not None}
    assert environment["ENV"] == "production"
    if name == "auth":
        # What `pricealert keys ensure` leaves in the auth-keys volume: a signing key and the root.
        generate_key(tmp_path / "keys")
        ensure_root_key(tmp_path / "keys", allow_generate=True)
        environment["AUTH_KEY_DIR"] = str(tmp_path / "keys")
    if name in {"alerts", "alerts-worker"}:
        # What it exports into the token-root volume.
        root, _ = ensure_root_key(tmp_path / "keys", allow_generate=True)
        write_public_key(root, tmp_path / "token-root" / "public.pem")
        environment["TOKEN_ROOT_PUBLIC_KEY_FILE"] = str(tmp_path / "token-root" / "public.pem")
    for variable in env_names(SETTINGS[name]) | set(environment):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)

    settings: Any = SETTINGS[name]()

    assert settings.redis_url == ("" if name == "docs" else redis_url_of(acl.role(name.removesuffix("-worker"))))
    assert settings.log_json is True
    if name in {"auth", "alerts", "alerts-worker"}:
        service = name.removesuffix("-worker")
        url = urlsplit(settings.database_url)
        assert (url.scheme, url.hostname, url.path) == ("postgresql", "postgres", f"/{service}")
        assert url.username == service  # each service has its own role and database


@pytest.mark.parametrize("settings_class", [AuthSettings, AlertsSettings], ids=["auth", "alerts"])
def test_the_migrate_step_builds_valid_production_settings(
    settings_class: type[BaseSettings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`db migrate auth alerts` and `alerts resync` run in migrate's container with both services' settings."""
    monkeypatch.chdir(tmp_path)
    environment = {k: v for k, v in service_environment(SERVICES["migrate"], DUMMY_SECRETS).items() if v is not None}
    assert environment["ENV"] == "production"
    # What `keys ensure --export-root` has just left, at the paths migrate's environment names.
    keys, exported = tmp_path / "keys", tmp_path / "token-root" / "public.pem"
    generate_key(keys)
    root, _ = ensure_root_key(keys, allow_generate=True)
    write_public_key(root, exported)
    assert environment["TOKEN_ROOT_PUBLIC_KEY_FILE"] == "/app/var/token-root/public.pem"
    environment |= {"AUTH_KEY_DIR": str(keys), "TOKEN_ROOT_PUBLIC_KEY_FILE": str(exported)}
    for variable in env_names(settings_class) | set(environment):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)

    assert settings_class().env == "production"  # type: ignore[attr-defined]


def test_postgres_has_a_database_per_service_from_the_init_script() -> None:
    postgres = SERVICES["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "./postgres/init-databases.sh:/docker-entrypoint-initdb.d/10-databases.sh:ro" in postgres["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"][1]


def test_no_secret_has_a_default() -> None:
    for variable in DUMMY_SECRETS:
        for match in re.split(r"\$\{" + variable + r"\b", compose_text())[1:]:
            assert match.startswith(":?"), f"{variable} must be required (${{{variable}:?...}}), never defaulted"
    for optional_secret in ("ADMIN_PASSWORD", "SMTP_PASSWORD"):
        assert "${" + optional_secret not in compose_text()  # passed through, never defaulted


def test_env_example_documents_every_variable() -> None:
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    used_by_compose = referenced_variables(compose_text())
    passed_through = {
        k for s in SERVICES.values() for k, v in service_environment(s, DUMMY_SECRETS).items() if v is None
    }
    missing = (all_settings_variables() | env_names(ServiceSettings) | used_by_compose | passed_through) - documented
    assert not missing, f".env.example does not document {sorted(missing)}"
    for line in ENV_EXAMPLE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            assert line.endswith("="), f"only empty placeholders may be uncommented: {line}"


def test_compose_interpolation_refuses_missing_secrets() -> None:
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        interpolate(SERVICES["redis"]["environment"]["REDIS_PASSWORD"], {})
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        interpolate(SERVICES["redis"]["environment"]["REDIS_PASSWORD"], {"REDIS_PASSWORD": ""})
