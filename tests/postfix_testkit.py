"""A Postfix instance for a test (or a clear failure under CI when Postfix is missing), and reading its mail."""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pricealert.devstack.postfix import PostfixServer, postfix_binary
from pricealert.devstack.servers import temp_dir


@contextmanager
def running_postfix() -> Iterator[PostfixServer]:
    """A started PostfixServer of the test's own, stopped and removed afterwards (skipped without Postfix or root,
    except under CI, where the test fails instead)."""
    missing = (
        "postfix is not installed"
        if postfix_binary() is None
        else "postfix instances need root"
        if os.geteuid() != 0
        else ""
    )
    if missing:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{missing} (.ci/run installs it)")
        pytest.skip(missing)
    server = PostfixServer(temp_dir("postfix-") / "postfix")
    try:
        yield server.start()
    finally:
        if server.log.exists():
            print(server.log.read_text()[-6000:])  # noqa: T201 - pytest shows captured output only on failure
        server.cleanup()
        server.directory.parent.rmdir()
    assert not server.processes(), "postfix processes left running"


def message_ids(server: PostfixServer) -> Counter[str]:
    """How often each Message-ID was delivered to the Maildir."""
    return Counter(str(m.message["Message-ID"]) for m in server.mails)


def refuses_connections(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
