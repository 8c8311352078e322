"""FastAPI dependencies: the typed app state, the alert service and the current user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pricealert.alerts.auth import User, authenticate
from pricealert.alerts.catalog import SymbolCatalog
from pricealert.alerts.outbox import OutboxRelay
from pricealert.alerts.service import AlertService
from pricealert.alerts.settings import AlertsSettings
from pricealert.common.tokens import KeyRing


@dataclass
class AppState:
    """What the lifespan builds and every request uses."""

    settings: AlertsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    keys: KeyRing
    catalog: SymbolCatalog
    relay: OutboxRelay
    service: AlertService
    tasks: list[object] = field(default_factory=list)


# Swagger's Authorize button logs in through the auth service behind the same gateway.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


def get_state(request: Request) -> AppState:
    """The app state built by the lifespan."""
    state: AppState = request.app.state.alerts
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_service(state: StateDep) -> AlertService:
    """The alert service of this app."""
    return state.service


async def get_current_user(state: StateDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    """The caller, from a valid access token."""
    return await authenticate(token, state.keys)


ServiceDep = Annotated[AlertService, Depends(get_service)]
CurrentUser = Annotated[User, Depends(get_current_user)]
