"""The workers load no web or SQL stack: their images install pricealert-common without its [api] extra."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKERS = ("evaluator", "ingest", "notifier")
WEB_AND_SQL = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "asyncpg", "aiosqlite", "alembic", "jwt")


@pytest.mark.parametrize("service", WORKERS)
def test_a_worker_declares_common_without_the_api_extra(service: str) -> None:
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())["project"]
    assert "pricealert-common" in project["dependencies"]
    assert not [d for d in project["dependencies"] if d.startswith("pricealert-common[")]


@pytest.mark.parametrize("service", WORKERS)
def test_a_worker_imports_no_web_or_sql_module(service: str) -> None:
    # A fresh interpreter: this one has loaded everything the other tests needed.
    probe = (
        f"import sys, pricealert.{service}.__main__, pricealert.{service}.handlers; "
        f"print(' '.join(m for m in {WEB_AND_SQL!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], f"pricealert.{service} loads {loaded}"
