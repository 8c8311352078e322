"""Request dependencies: the app state, a committed-or-rolled-back session, the service, the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.auth.models import User
from pricealert.auth.registration import Registration
from pricealert.auth.service import AuthService
from pricealert.auth.state import AuthState
from pricealert.common.errors import Forbidden, ServiceUnavailable, Unauthorized

# How long a request waits for start-up (database migrated) before answering 503.
STARTUP_WAIT_S = 10.0

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


def get_state(request: Request) -> AuthState:
    """The state the lifespan stored on the app."""
    return cast(AuthState, request.app.state.auth)


StateDep = Annotated[AuthState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A session committed when the route returns (before the response leaves), rolled back on error."""
    try:
        await asyncio.wait_for(state.database_ready.wait(), STARTUP_WAIT_S)
    except TimeoutError as exc:
        raise ServiceUnavailable("The auth service is still starting.") from exc
    async with state.sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a client never holds a token the database lacks.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_service(state: StateDep, session: SessionDep) -> AuthService:
    """The auth service bound to this request's session."""
    return AuthService(session, keyring=state.keyring, hasher=state.hasher, limiter=state.limiter, policy=state.policy)


ServiceDep = Annotated[AuthService, Depends(get_service, scope="function")]


def get_registration(state: StateDep, session: SessionDep) -> Registration:
    """Sign-up (registration, verification) bound to this request's session."""
    return Registration(
        session,
        hasher=state.hasher,
        limiter=state.signup_limiter,
        events=state.account_events,
        policy=state.signup_policy,
    )


RegistrationDep = Annotated[Registration, Depends(get_registration, scope="function")]


async def get_current_user(service: ServiceDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    """The active user whose access token came in the Authorization header."""
    if not token:
        raise Unauthorized("An access token is required.", code="not_authenticated")
    return await service.authenticate(token)


CurrentUser = Annotated[User, Depends(get_current_user, scope="function")]


async def get_admin(user: CurrentUser) -> User:
    """The current user, who must be an admin."""
    if not user.is_admin:
        raise Forbidden("Only admins may do this.", code="admin_required")
    return user


AdminUser = Annotated[User, Depends(get_admin, scope="function")]
