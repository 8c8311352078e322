"""deploy/Dockerfile's two uv phases, replayed with uv on the files the Dockerfile copies (no Docker engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deploy_testkit import DOCKERFILE, REPO

SERVICE = "evaluator"


def _uv() -> str:
    found = shutil.which("uv")
    assert found is not None, "uv is on PATH wherever the tests run"
    return found


def _phase_one_files() -> list[str]:
    """What the Dockerfile copies before its first `uv sync` (manifests and the lock only)."""
    before = DOCKERFILE.read_text().split("--no-install-workspace", 1)[0]
    copied: list[str] = []
    for line in before.splitlines():
        tokens = line.split()
        if tokens[:1] == ["COPY"] and not tokens[1].startswith("--"):
            copied.extend(tokens[1:-1])
    return copied


def _sync(context: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        _uv(),
        "sync",
        "--frozen",
        "--no-dev",
        *extra,
        "--package",
        f"pricealert-{SERVICE}",
        "--package",
        "pricealert-cli",
    ]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(context / ".venv"), "UV_LINK_MODE": "copy"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(command, cwd=context, capture_output=True, text=True, timeout=300, env=env)


def test_the_image_build_installs_dependencies_first_then_the_members(tmp_path: Path) -> None:
    context = tmp_path / "app"
    files = _phase_one_files()
    assert {"pyproject.toml", "uv.lock", f"services/{SERVICE}/pyproject.toml", "libs/cli/pyproject.toml"} <= set(files)
    for name in files:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, context / name)

    phase_one = _sync(context, "--no-install-workspace")
    assert phase_one.returncode == 0, phase_one.stderr
    site = next((context / ".venv" / "lib").glob("python3*/site-packages"))
    assert (site / "redis").is_dir() and (site / "typer").is_dir()
    assert not (site / "pricealert").exists()  # source not copied yet: the dependency layer stays cached

    for member in ("libs", "services"):
        shutil.copytree(
            REPO / member,
            context / member,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "tests", ".venv"),
        )
    phase_two = _sync(context, "--no-editable")
    assert phase_two.returncode == 0, phase_two.stderr

    assert sorted(p.name for p in (site / "pricealert").iterdir()) == ["cli", "common", SERVICE]
    python = context / ".venv" / "bin" / "python"
    health = subprocess.run(
        [str(python), "-m", "pricealert.cli", "health", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert health.returncode == 0, health.stderr
    runs = subprocess.run(
        [str(python), "-c", f"import pricealert.{SERVICE}.__main__"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert runs.returncode == 0, runs.stderr
