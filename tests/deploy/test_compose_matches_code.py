"""deploy/compose.yaml against the code: commands, ports, health checks, start order and images of every service."""

from __future__ import annotations

import importlib
import ipaddress
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from compose_testkit import (
    APIS,
    COMMANDS,
    COMPOSE,
    MODULES,
    SERVICES,
    WORKERS,
    compose_environment,
)
from deploy_testkit import (
    DOCKERFILE,
    REPO,
    compose_text,
    interpolate,
    template_variables,
)

from pricealert.alerts.settings import AlertsSettings
from pricealert.auth.settings import AuthSettings


@pytest.mark.parametrize("name", sorted(MODULES))
def test_command_runs_the_services_module(name: str) -> None:
    command = SERVICES[name]["command"]
    assert command == ["python", "-m", MODULES[name], *COMMANDS.get(name, [])]
    assert importlib.util.find_spec(MODULES[name]) is not None


@pytest.mark.parametrize("name", sorted(APIS))
def test_api_listens_where_the_healthcheck_and_gateway_look(name: str) -> None:
    host_var, port_var = APIS[name]
    environment = compose_environment(name)
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

    assert compose_environment("auth")["AUTH_FORWARDED_ALLOW_IPS"] == gateway
    assert ipaddress.ip_address(gateway) in ipaddress.ip_network(subnet)


def test_api_ports_are_the_code_defaults() -> None:
    assert compose_environment("auth")["AUTH_PORT"] == str(AuthSettings.model_fields["port"].default)
    assert compose_environment("alerts")["ALERTS_PORT"] == str(AlertsSettings.model_fields["port"].default)


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
    assert compose_environment("migrate")[variable] == compose_environment(name)[variable]


def test_alerts_trusts_the_root_migrate_exports_and_never_mounts_private_keys() -> None:
    migrate, alerts = SERVICES["migrate"], SERVICES["alerts"]
    command = migrate["command"][-1].split()
    exported = Path(command[command.index("--export-root") + 1])
    assert command[:3] == ["pricealert", "keys", "ensure"]
    assert Path(compose_environment("alerts")["TOKEN_ROOT_PUBLIC_KEY_FILE"] or "") == exported
    assert f"token-root:{exported.parent}" in migrate["volumes"]
    assert alerts["volumes"] == [f"token-root:{exported.parent}:ro"]
    assert compose_environment("migrate")["AUTH_KEY_DIR"] == compose_environment("auth")["AUTH_KEY_DIR"]
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
