"""deploy/compose.yaml against the code: commands, ports, health checks and variables of every service."""

from __future__ import annotations

import importlib
import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from deploy_testkit import (
    DOCKERFILE,
    DUMMY_SECRETS,
    ENV_EXAMPLE,
    REPO,
    compose_text,
    interpolate,
    load_compose,
    referenced_variables,
    service_environment,
    template_variables,
)
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from pricealert.alerts import handlers as alerts_handlers
from pricealert.alerts.settings import AlertsSettings
from pricealert.auth.keys import generate_key
from pricealert.auth.rootkey import ensure_root_key, write_public_key
from pricealert.auth.settings import AuthSettings
from pricealert.cli.redisacl import RedisAclSettings
from pricealert.common import acl, names
from pricealert.common.settings import ServiceSettings
from pricealert.devstack.gateway import GatewaySettings
from pricealert.evaluator import handlers as evaluator_handlers
from pricealert.evaluator.settings import EvaluatorSettings
from pricealert.ingest import handlers as ingest_handlers
from pricealert.ingest.settings import IngestSettings
from pricealert.notifier import handlers as notifier_handlers
from pricealert.notifier.settings import NotifierSettings

SETTINGS: dict[str, type[BaseSettings]] = {
    "auth": AuthSettings,
    "alerts": AlertsSettings,
    "alerts-worker": AlertsSettings,
    "ingest": IngestSettings,
    "evaluator": EvaluatorSettings,
    "notifier": NotifierSettings,
    "docs": GatewaySettings,
}
MODULES = {
    "auth": "pricealert.auth",
    "alerts": "pricealert.alerts",
    "alerts-worker": "pricealert.alerts",
    "ingest": "pricealert.ingest",
    "evaluator": "pricealert.evaluator",
    "notifier": "pricealert.notifier",
    "docs": "pricealert.devstack.gateway",
}
WORKERS = {
    "alerts-worker": alerts_handlers.SERVICE,
    "ingest": ingest_handlers.SERVICE,
    "evaluator": evaluator_handlers.SERVICE,
    "notifier": notifier_handlers.SERVICE,
}
# The arguments after the module (the alerts API and its worker share one module).
COMMANDS = {"alerts": ["serve"], "alerts-worker": ["worker"]}
APIS = {"auth": ("AUTH_HOST", "AUTH_PORT"), "alerts": ("ALERTS_HOST", "ALERTS_PORT"), "docs": ("HOST", "PORT")}
COMPOSE = load_compose()
SERVICES = COMPOSE["services"]


def env_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads (aliases, alias choices, or the field name)."""
    found: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            found.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            found.add(alias)
        else:
            found.add(name.upper())
    return found


def _all_settings_variables() -> set[str]:
    return set().union(*(env_names(s) for s in SETTINGS.values()))


def _environment(name: str) -> dict[str, str | None]:
    return service_environment(SERVICES[name], DUMMY_SECRETS)


def redis_url_of(role: acl.Role) -> str:
    """The REDIS_URL that logs in as `role`'s own Redis user."""
    return f"redis://{role.user}:{DUMMY_SECRETS[role.password_variable]}@redis:6379/0"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_command_runs_the_services_module(name: str) -> None:
    command = SERVICES[name]["command"]
    assert command == ["python", "-m", MODULES[name], *COMMANDS.get(name, [])]
    assert importlib.util.find_spec(MODULES[name]) is not None


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_variable_is_one_the_settings_class_reads(name: str) -> None:
    environment = _environment(name)
    unknown = set(environment) - env_names(SETTINGS[name])
    assert not unknown, f"{name} is given variables its settings ignore: {sorted(unknown)}"
    assert {"ENV", "LOG_JSON", "REDIS_URL"} <= set(environment)
    assert "CONSUMER_NAME" not in environment  # the host name: unique per replica, stable across restarts


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_environment_makes_valid_production_settings(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    environment = {k: v for k, v in _environment(name).items() if v is not None}
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


@pytest.mark.parametrize("name", sorted(SETTINGS.keys() - {"docs"}))
def test_each_service_connects_to_redis_as_its_own_user(name: str) -> None:
    environment = _environment(name)
    role = acl.role(name.removesuffix("-worker"))  # the alerts worker is the alerts service

    assert environment["REDIS_URL"] == redis_url_of(role)
    assert "REDIS_PASSWORD" not in environment and "REDIS_ADMIN_URL" not in environment
    for other in acl.ROLES:
        assert (DUMMY_SECRETS[other.password_variable] in str(environment)) == (other.name == role.name)


def test_the_docs_gateway_has_no_redis_credential() -> None:
    environment = _environment("docs")

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
    environment = _environment("migrate")
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
    environment = _environment("redis")
    script = redis["command"][2]
    assert environment["REDIS_ADMIN_USER"] == acl.ADMIN_USER
    assert environment["REDIS_ACL_FILE"].startswith("/data/")  # on the redis-data volume: users survive restarts
    assert "--aclfile" in script and "--requirepass" not in script  # Redis ignores requirepass with an ACL file
    assert "user default off" in script
    assert '--user "$$REDIS_ADMIN_USER"' in redis["healthcheck"]["test"][1]


@pytest.mark.parametrize("name", sorted(APIS))
def test_api_listens_where_the_healthcheck_and_gateway_look(name: str) -> None:
    host_var, port_var = APIS[name]
    environment = _environment(name)
    port = environment[port_var]
    assert environment[host_var] == "0.0.0.0"
    assert SERVICES[name]["expose"] == [port]
    assert "ports" not in SERVICES[name]
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[:5] == ["CMD", "python", "-m", "pricealert.cli", "health"]
    url = urlsplit(test[test.index("--http") + 1])
    assert (url.hostname, str(url.port)) == ("127.0.0.1", port)
    assert url.path == ("/healthz" if name == "docs" else "/readyz")
    upstream = SERVICES["gateway"]["environment"][f"{name.upper()}_UPSTREAM"]
    assert upstream == f"{name}:{port} resolve"
    if name != "docs":
        assert SERVICES["docs"]["environment"][f"{name.upper()}_URL"] == f"http://{name}:{port}"


def test_auth_believes_the_client_address_from_the_gateway_only() -> None:
    gateway = interpolate(SERVICES["gateway"]["networks"]["default"]["ipv4_address"], {})
    subnet = interpolate(COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"], {})

    assert _environment("auth")["AUTH_FORWARDED_ALLOW_IPS"] == gateway
    assert ipaddress.ip_address(gateway) in ipaddress.ip_network(subnet)


def test_api_ports_are_the_code_defaults() -> None:
    assert _environment("auth")["AUTH_PORT"] == str(AuthSettings.model_fields["port"].default)
    assert _environment("alerts")["ALERTS_PORT"] == str(AlertsSettings.model_fields["port"].default)


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_worker_healthcheck_reads_the_heartbeat_key_the_worker_writes(name: str) -> None:
    healthcheck = SERVICES[name]["healthcheck"]
    assert healthcheck["test"] == ["CMD", "python", "-m", "pricealert.cli", "health", WORKERS[name]]
    # The key lives 30 s and is refreshed every <= 5 s: three misses 10 s apart mean a stuck loop.
    assert healthcheck["retries"] * int(healthcheck["interval"].rstrip("s")) >= 30


@pytest.mark.parametrize("name", sorted(MODULES))
def test_long_running_services_restart_and_wait_for_healthy_dependencies(name: str) -> None:
    service = SERVICES[name]
    assert service["restart"] == "unless-stopped"
    for dependency, condition in service.get("depends_on", {}).items():
        expected = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
        assert condition["condition"] == expected, (name, dependency)
        assert dependency == "migrate" or "healthcheck" in SERVICES[dependency]


@pytest.mark.parametrize("name", ["auth", "alerts"])
def test_apis_start_after_the_migrations(name: str) -> None:
    assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    migrate = SERVICES["migrate"]
    assert migrate["restart"] == "no"
    assert "pricealert db migrate auth alerts" in migrate["command"][-1]
    assert set(migrate["build"]["args"]["EXTRA_PACKAGES"].split()) == {"pricealert-auth", "pricealert-alerts"}
    variable = f"{name.upper()}_DATABASE_URL"
    assert _environment("migrate")[variable] == _environment(name)[variable]


def test_alerts_trusts_the_root_migrate_exports_and_never_mounts_private_keys() -> None:
    migrate, alerts = SERVICES["migrate"], SERVICES["alerts"]
    command = migrate["command"][-1].split()
    exported = Path(command[command.index("--export-root") + 1])
    assert command[:3] == ["pricealert", "keys", "ensure"]
    assert Path(_environment("alerts")["TOKEN_ROOT_PUBLIC_KEY_FILE"] or "") == exported
    assert f"token-root:{exported.parent}" in migrate["volumes"]
    assert alerts["volumes"] == [f"token-root:{exported.parent}:ro"]
    assert _environment("migrate")["AUTH_KEY_DIR"] == _environment("auth")["AUTH_KEY_DIR"]
    assert "token-root" in COMPOSE["volumes"]
    # Only auth and the one-shot migrate hold the private keys.
    holders = {
        name
        for name, service in SERVICES.items()
        if any(str(volume).startswith("auth-keys:") for volume in service.get("volumes", []))
    }
    assert holders == {"auth", "migrate"}


def test_workers_scale_no_fixed_names_or_host_ports() -> None:
    assert "container_name" not in compose_text()
    for name in ("alerts-worker", "ingest", "evaluator", "notifier"):
        assert "ports" not in SERVICES[name] and "hostname" not in SERVICES[name]
    published = {name for name, service in SERVICES.items() if "ports" in service}
    assert published == {"gateway", "mailpit"}
    assert SERVICES["gateway"]["ports"] == ["${PORT:-8000}:8080"]
    assert SERVICES["mailpit"]["ports"][0].startswith("127.0.0.1:")


def test_build_args_name_workspace_members_that_hold_the_commands_module() -> None:
    members = {
        tomllib.loads(p.read_text())["project"]["name"]: p.parent
        for p in [*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]
    }
    for name, service in SERVICES.items():
        if "build" not in service:
            continue
        assert service["build"]["context"] == ".." and service["build"]["dockerfile"] == "deploy/Dockerfile"
        package = f"pricealert-{service['build']['args']['SERVICE']}"
        assert package in members, (name, package)
        if name in MODULES:
            module_path = Path(*MODULES[name].split("."))
            source = members[package] / "src" / module_path
            assert source.is_dir() or source.with_suffix(".py").exists(), (name, package)


def test_redis_keeps_an_append_only_file_fsynced_every_second() -> None:
    redis = SERVICES["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command  # streams must never be evicted
    assert "redis-data:/data" in redis["volumes"]
    assert "healthcheck" in redis


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
    missing = (_all_settings_variables() | env_names(ServiceSettings) | used_by_compose | passed_through) - documented
    assert not missing, f".env.example does not document {sorted(missing)}"
    for line in ENV_EXAMPLE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            assert line.endswith("="), f"only empty placeholders may be uncommented: {line}"


def test_compose_interpolation_refuses_missing_secrets() -> None:
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        interpolate(SERVICES["redis"]["environment"]["REDIS_PASSWORD"], {})
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        interpolate(SERVICES["redis"]["environment"]["REDIS_PASSWORD"], {"REDIS_PASSWORD": ""})


def test_gateway_sets_exactly_the_templates_variables() -> None:
    gateway = SERVICES["gateway"]
    assert set(gateway["environment"]) == template_variables()
    assert gateway["volumes"] == ["./nginx/pricealert.conf.template:/etc/nginx/templates/default.conf.template:ro"]
    assert gateway["environment"]["NGINX_LISTEN"] == gateway["ports"][0].rsplit(":", 1)[1]


def test_dockerfile_two_phase_uv_sync_for_every_member() -> None:
    text = DOCKERFILE.read_text()
    members = sorted(
        str(p.relative_to(REPO)) for p in [*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]
    )
    for member in members:
        assert f"COPY {member} {member}" in text, f"deploy/Dockerfile phase 1 misses {member}"
    assert "FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv" in text
    version = text.split("ARG UV_VERSION=", 1)[1].split()[0]
    assert version[0].isdigit() and version.count(".") == 2  # pinned, never `latest`
    assert "FROM python:${PYTHON_VERSION}-slim" in text and "ARG PYTHON_VERSION=3.11" in text
    phase1 = text.index("uv sync --frozen --no-dev --no-install-workspace")
    phase2 = text.index("uv sync --frozen --no-dev --no-editable")
    assert phase1 < text.index("COPY libs libs") < phase2
    assert "USER pricealert" in text.split("FROM python:${PYTHON_VERSION}-slim AS runtime", 1)[1]
