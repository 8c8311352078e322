"""Several uvicorn worker processes: the app factory they load, and the lock that elects one of them.

The relay runs in every worker (each is woken by its own commits, the relay lock orders them); the
stream consumers and the expiry sweeper run only in the worker holding an exclusive lock on a file, and
move to another worker within a second when that one dies (the kernel releases the lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import gc
import os
import signal
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import structlog
from fastapi import FastAPI

log = structlog.get_logger()

# Set by `python -m pricealert.alerts` for the workers it spawns (not meant to be set by hand).
LEADER_LOCK_ENV = "PRICEALERT_ALERTS_LEADER_LOCK"
SUPERVISOR_PID_ENV = "PRICEALERT_ALERTS_SUPERVISOR_PID"
LEADER_RETRY_S = 1.0
_PR_SET_PDEATHSIG = 1

Loop = Callable[[asyncio.Event], Awaitable[None]]
Supervise = Callable[[str, Loop, asyncio.Event], Awaitable[None]]


def leader_lock_path(host: str, port: int) -> Path:
    """The lock file shared by the workers of the server listening on host:port."""
    return Path(tempfile.gettempdir()) / f"pricealert-alerts-{host}-{port}.lock"


class Leader:
    """Runs `loops` while this process holds the exclusive lock on `path`; waits for it otherwise."""

    def __init__(self, path: Path, loops: Sequence[tuple[str, Loop]], supervise: Supervise) -> None:
        self.path = path
        self.loops = list(loops)
        self.supervise = supervise

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for the lock, then run every loop until `stop`; closing the file releases the lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not stop.is_set():
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=LEADER_RETRY_S)
            if stop.is_set():
                return
            log.info("alerts.leader.elected", pid=os.getpid(), tasks=[name for name, _ in self.loops])
            await asyncio.gather(*(self.supervise(name, loop, stop) for name, loop in self.loops))
        finally:
            os.close(fd)


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the supervisor dies, so a kill -9 of it leaves no orphan serving."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    if expected is not None and os.getppid() != int(expected):
        # The supervisor died before the request above took effect.
        os.kill(os.getpid(), signal.SIGTERM)


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory when ALERTS_WORKERS > 1)."""
    from pricealert.alerts.main import create_app
    from pricealert.alerts.settings import get_settings
    from pricealert.common.logging import configure_logging

    die_with_parent()
    settings = get_settings()
    configure_logging(service="alerts", level=settings.log_level, json=settings.log_json)
    lock = os.environ.get(LEADER_LOCK_ENV)
    app = create_app(settings, leader_lock=Path(lock) if lock else None)
    freeze_heap()
    return app


def freeze_heap() -> None:
    """Move everything loaded so far out of the collector's sight: full collections stay short under load."""
    gc.collect()
    gc.freeze()
