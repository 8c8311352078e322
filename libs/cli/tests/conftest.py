"""Fixtures of the CLI tests: the environment that points the CLI at the test's Redis."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def cli_env(redis_url: str) -> dict[str, str]:
    """REDIS_URL of the (flushed) test Redis, as an operator would export it."""
    return {"REDIS_URL": redis_url}
