"""structlog set-up: console lines locally, JSON in containers, contextvars bound per message."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, service: str, level: str = "INFO", json: bool = False) -> None:
    """Route structlog and stdlib logging through one formatter."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    # A plain traceback: the default (rich, with every frame's locals) blocks the event loop for seconds per logged
    # exception on a busy host, long enough for leases to lapse and every Redis read in flight to time out.
    console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    renderer: structlog.types.Processor = structlog.processors.JSONRenderer() if json else console
    structlog.configure(
        # Level first: a line below the level then costs one check, not the whole chain.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
    for noisy in ("uvicorn.access", "aiosqlite", "asyncio", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
