"""`python -m pricealert.alerts serve`: the API under uvicorn, in one process or ALERTS_WORKERS of them.

Several processes share the listening socket; each builds its app from the environment (`process_app`) and
dies with the supervisor. They serve HTTP only: the consumers, relay and sweeper are the worker's (worker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
from typing import Any

import uvicorn
from fastapi import FastAPI

from pricealert.alerts.app import create_app
from pricealert.alerts.maintenance import migrate
from pricealert.alerts.metrics import shared_by_workers
from pricealert.alerts.settings import AlertsSettings, get_settings
from pricealert.common.logging import configure_logging

# Set by `serve` for the processes it spawns (not meant to be set by hand).
SUPERVISOR_PID_ENV = "PRICEALERT_ALERTS_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the supervisor dies, so a kill -9 of it leaves no orphan serving."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    if expected is not None and os.getppid() != int(expected):
        # The supervisor died before the request above took effect.
        os.kill(os.getpid(), signal.SIGTERM)


def process_app() -> FastAPI:
    """The app of one API process (uvicorn's factory when ALERTS_WORKERS > 1)."""
    die_with_parent()
    settings = get_settings()
    configure_logging(service="alerts", level=settings.log_level, json=settings.log_json)
    app = create_app(settings)
    freeze_heap()
    return app


def freeze_heap() -> None:
    """Move everything loaded so far out of the collector's sight: full collections stay short under load."""
    gc.collect()
    gc.freeze()


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """How uvicorn serves the alerts API (bench/http_hop_app.py serves its floor with the same)."""
    # No proxy headers: alerts needs no client address, so no X-Forwarded-For is believed (only auth's is).
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "lifespan": "on",
        "timeout_graceful_shutdown": 15,
        "loop": "uvloop",
        "http": "httptools",
        "proxy_headers": False,
    }


def serve(settings: AlertsSettings) -> None:
    """Run uvicorn until SIGTERM/SIGINT."""
    options = uvicorn_options(settings.host, settings.port)
    if settings.workers == 1:
        app = create_app(settings)
        freeze_heap()
        uvicorn.run(app, **options)
        return
    # Migrate once here, before the processes start (each then finds nothing to do).
    asyncio.run(migrate(settings))
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    with shared_by_workers():
        uvicorn.run("pricealert.alerts.serve:process_app", factory=True, workers=settings.workers, **options)
