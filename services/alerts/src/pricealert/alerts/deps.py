"""FastAPI dependencies: the typed app state, the alert service and the current user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from pricealert.alerts.auth import User, authenticate
from pricealert.alerts.catalog import SymbolCatalog
from pricealert.alerts.channelservice import ChannelService
from pricealert.alerts.service import AlertService
from pricealert.alerts.settings import AlertsSettings
from pricealert.alerts.shardgate import ShardGate
from pricealert.alerts.store import AlertStore
from pricealert.common.redisconn import RedisClient
from pricealert.common.tokens import KeyRing, VerifiedTokens


@dataclass
class AppState:
    """What a process of the service builds (state.py): the API's lifespan, the worker, the maintenance commands."""

    settings: AlertsSettings
    store: AlertStore
    redis: RedisClient
    keys: KeyRing
    catalog: SymbolCatalog
    service: AlertService
    gate: ShardGate
    channels: ChannelService
    verified_tokens: VerifiedTokens = field(default_factory=VerifiedTokens)


# Swagger's Authorize button logs in through the auth service behind the same gateway.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


# Dependencies are coroutines: FastAPI runs plain functions in a worker thread, a costly hop per request.
async def get_state(request: Request) -> AppState:
    """The app state built by the lifespan."""
    state: AppState = request.app.state.alerts
    return state


StateDep = Annotated[AppState, Depends(get_state)]


# The two below read the state from the request rather than through StateDep: every dependency FastAPI
# resolves costs tens of microseconds per request.
async def get_service(request: Request) -> AlertService:
    """The alert service of this app."""
    state: AppState = request.app.state.alerts
    return state.service


async def get_current_user(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    """The caller, from a valid access token."""
    state: AppState = request.app.state.alerts
    return await authenticate(token, state.keys, state.verified_tokens)


async def get_channels(request: Request) -> ChannelService:
    """The channel service of this app."""
    state: AppState = request.app.state.alerts
    return state.channels


ServiceDep = Annotated[AlertService, Depends(get_service)]
ChannelsDep = Annotated[ChannelService, Depends(get_channels)]
CurrentUser = Annotated[User, Depends(get_current_user)]
