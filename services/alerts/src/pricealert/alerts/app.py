"""The alerts API application and its lifespan (store, Redis); it serves HTTP only (the worker does the rest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI

from pricealert.alerts.api.fastpath import FastRoutes
from pricealert.alerts.api.routes import alerts, channels, deliveries, feed, symbols
from pricealert.alerts.catalog import read_exchange_link
from pricealert.alerts.deps import AppState
from pricealert.alerts.feedstream import Feeds
from pricealert.alerts.maintenance import prepare
from pricealert.alerts.metrics import install_metrics, worker_exiting
from pricealert.alerts.settings import AlertsSettings, get_settings
from pricealert.alerts.state import build_state, close_state
from pricealert.common.api import install_common
from pricealert.common.prices import ExchangeLink, LinkState

log = structlog.get_logger()

READY_TIMEOUT_S = 2.0


def create_app(settings: AlertsSettings | None = None) -> FastAPI:
    """The alerts API; `settings` defaults to the environment's."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or get_settings()
        state = build_state(config, statement_timeout_s=config.db_statement_timeout_s)
        feeds = app.state.feeds = Feeds(state.settings)
        stopping, checking = asyncio.Event(), None
        try:
            await prepare(state)
            # Refuses to start on another shard count than Redis records; while Redis is away, checks once it answers.
            checking = await state.gate.start(stopping)
            app.state.alerts = state
            log.info("alerts.started")
            yield
        finally:
            stopping.set()
            if checking is not None:
                await checking
            await feeds.close()
            await close_state(state)
            worker_exiting()
            log.info("alerts.stopped")

    app = FastAPI(
        title="pricealert alerts",
        version="0.1.0",
        lifespan=lifespan,
        # Only opentelemetry-api is installed: FastAPI's telemetry could never report, yet it checks per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        description="Create, list, inspect and delete price alerts. Every call needs an access token "
        "from the auth service (`Authorization: Bearer <token>`).",
    )

    async def ready() -> bool:
        state: AppState | None = getattr(app.state, "alerts", None)
        if state is None or not state.gate.agreed:
            return False
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await state.store.ping()
                await state.redis.ping()
        except Exception as exc:  # any failure means "not ready", never a 500
            log.warning("alerts.not_ready", error=f"{type(exc).__name__}: {exc}")
            return False
        return True

    async def readiness_details() -> dict[str, Any]:
        # The exchange never makes the API unready: alerts are kept and listed without it.
        state: AppState | None = getattr(app.state, "alerts", None)
        if state is None:
            return {"exchange": ExchangeLink(LinkState.UNKNOWN).public()}
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                link = await read_exchange_link(state.redis)
        except TimeoutError:
            link = ExchangeLink(LinkState.UNKNOWN)
        return {"exchange": link.public()}

    # Added first, so innermost: the request id, the body cap and the metrics wrap the fast path too.
    app.add_middleware(FastRoutes, api=app)
    install_common(app, ready=ready, details=readiness_details)
    install_metrics(app)

    app.include_router(alerts.router)
    app.include_router(channels.router)
    app.include_router(deliveries.router)
    app.include_router(feed.router)
    app.include_router(symbols.router)
    return app
