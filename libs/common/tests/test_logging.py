"""configure_logging's console lines: a logged exception is a plain traceback, cheap to render and free of locals."""

from __future__ import annotations

import subprocess
import sys

_LOG_A_FAILURE = """
import structlog
from pricealert.common.logging import configure_logging

configure_logging(service="test")


def fail(marker):
    raise ConnectionError("redis went away")


try:
    fail("local-value-" + "7f3a")
except ConnectionError:
    structlog.get_logger().warning("stream.message.failed", exc_info=True)
"""


def test_an_exception_is_logged_as_a_plain_traceback_without_locals() -> None:
    # Rendering every frame's locals (rich's default) held a worker's event loop for seconds per exception.
    done = subprocess.run(
        [sys.executable, "-c", _LOG_A_FAILURE], capture_output=True, text=True, timeout=60, check=True
    )
    assert "stream.message.failed" in done.stderr
    assert "Traceback (most recent call last):" in done.stderr
    assert "ConnectionError: redis went away" in done.stderr
    assert "local-value-7f3a" not in done.stderr
