"""The auth service's FastAPI app and its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pricealert.auth.api.routes import auth, session, users, verification, wellknown
from pricealert.auth.bootstrap import maintain_keys, prepare_database
from pricealert.auth.handlers import AccountEvents
from pricealert.auth.keys import DiskKeyRing
from pricealert.auth.ratelimit import LoginLimiter, LoginLimits
from pricealert.auth.registration import SignupPolicy
from pricealert.auth.security import PasswordHasher
from pricealert.auth.service import TokenPolicy
from pricealert.auth.settings import AuthSettings, get_settings
from pricealert.auth.signup_limits import SignupLimiter, SignupLimits
from pricealert.auth.state import AuthState
from pricealert.common.api import install_common
from pricealert.common.db import create_engine, session_factory
from pricealert.common.metrics import install_metrics
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, connect_to
from pricealert.common.settings import Environment

log = structlog.get_logger()

_READY_TIMEOUT_S = 2.0
_STOP_TIMEOUT_S = 5.0


async def build_state(settings: AuthSettings) -> AuthState:
    """Engine, Redis client, keys (generated in development; required in production), hasher, limiter."""
    redis = connect_to(settings.redis_url, settings.redis_cluster_url)
    max_ttl = timedelta(seconds=max(settings.access_token_ttl_s, settings.refresh_token_ttl_s))
    keyring = DiskKeyRing(
        settings.key_dir,
        max_token_ttl=max_ttl,
        access_token_ttl=timedelta(seconds=settings.access_token_ttl_s),
        allow_generate=settings.env is not Environment.PRODUCTION,
    )
    await asyncio.to_thread(keyring.load)
    hasher = await asyncio.to_thread(PasswordHasher, settings.bcrypt_rounds)
    engine = create_engine(
        settings.database_url,
        application_name="pricealert-auth",
        pooler=settings.database_pooler,
        statement_timeout_s=settings.db_statement_timeout_s,
    )
    limits = LoginLimits(
        window_s=settings.login_window_s,
        per_account_address=settings.login_max_failures_account_address,
        per_address=settings.login_max_failures_address,
        per_account=settings.login_max_failures_account,
        known_address_ttl_s=settings.login_known_address_ttl_s,
    )
    policy = TokenPolicy(
        access_ttl=timedelta(seconds=settings.access_token_ttl_s),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
    )
    signup_limits = SignupLimits(
        window_s=settings.register_window_s,
        per_address=settings.register_max_per_address,
        resends_per_account=settings.verify_resend_max_per_account,
    )
    signup_policy = SignupPolicy(
        require_verified_email=settings.require_verified_email,
        token_ttl=timedelta(seconds=settings.verify_token_ttl_s),
        notice_window_s=settings.register_window_s,
    )
    return AuthState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        redis=redis,
        keyring=keyring,
        hasher=hasher,
        limiter=LoginLimiter(redis, limits),
        policy=policy,
        signup_limiter=SignupLimiter(redis, signup_limits),
        account_events=AccountEvents(redis),
        signup_policy=signup_policy,
    )


async def is_ready(state: AuthState) -> bool:
    """Ready when start-up finished and both the database and Redis answer."""
    if not (state.database_ready.is_set() and state.keys_published.is_set()):
        return False
    try:
        async with asyncio.timeout(_READY_TIMEOUT_S):
            async with state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            await state.redis.ping()
    except (TimeoutError, OSError, DBAPIError, *TRANSIENT_REDIS_ERRORS) as exc:
        log.warning("auth.not_ready", error=f"{type(exc).__name__}: {exc}")
        return False
    return True


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    """The auth API; settings default to the environment's."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await build_state(settings or get_settings())
        app.state.auth = state
        tasks = [
            asyncio.create_task(prepare_database(state), name="auth-prepare-database"),
            asyncio.create_task(maintain_keys(state), name="auth-maintain-keys"),
        ]
        log.info("auth.started", kid=state.keyring.signing_key.kid)
        try:
            yield
        finally:
            state.stopping.set()
            for task in tasks:
                task.cancel()
            _, pending = await asyncio.wait(tasks, timeout=_STOP_TIMEOUT_S)
            if pending:
                log.warning("auth.stop.tasks_pending", tasks=[task.get_name() for task in pending])
            await state.redis.aclose()
            await state.engine.dispose()
            log.info("auth.stopped")

    app = FastAPI(
        title="pricealert auth",
        version="0.1.0",
        lifespan=lifespan,
        description="Accounts, login and EdDSA-signed JWTs for pricealert.",
    )

    async def ready() -> bool:
        return await is_ready(app.state.auth)

    install_common(app, ready=ready)
    install_metrics(app, service="auth")

    app.include_router(auth.router)
    app.include_router(session.router)
    app.include_router(verification.router)
    app.include_router(users.router)
    app.include_router(wellknown.router)
    return app
