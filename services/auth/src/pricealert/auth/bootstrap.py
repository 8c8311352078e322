"""Start-up work that waits for its dependencies: migrations, the first admin, key publishing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import structlog
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError

from pricealert.auth.keys import publish_public_keys
from pricealert.auth.models import User
from pricealert.auth.repository import RefreshTokenRepository, UserRepository, VerificationTokenRepository
from pricealert.auth.service import normalize_email
from pricealert.auth.state import AuthState
from pricealert.common.db import upgrade_database, wait_for_database
from pricealert.common.events import utc_now
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, wait_for_redis

log = structlog.get_logger()

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_auth"
_MAX_DELAY_S = 5.0
_PURGE_EVERY_S = 3600.0
_LINK_GRACE = timedelta(days=7)


async def prepare_database(state: AuthState) -> None:
    """Wait for the database, migrate it and create the admin from the environment, retrying on failure."""
    delay = 0.2
    while not state.stopping.is_set():
        try:
            await wait_for_database(state.engine)
            await asyncio.to_thread(upgrade_database, state.settings.database_url, MIGRATIONS, VERSION_TABLE)
            await ensure_admin(state)
            state.database_ready.set()
            log.info("auth.database.ready")
            return
        except Exception as exc:  # a concurrent replica migrating, or the database dropping mid-way
            log.warning("auth.database.prepare_failed", error=f"{type(exc).__name__}: {exc}", retry_in=delay)
            await state.pause(delay)
            delay = min(delay * 2, _MAX_DELAY_S)


async def ensure_admin(state: AuthState) -> None:
    """Create (or promote) the admin named by ADMIN_EMAIL / ADMIN_PASSWORD; idempotent."""
    settings = state.settings
    if settings.admin_email is None or settings.admin_password is None:
        return
    try:
        email = normalize_email(validate_email(settings.admin_email, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValueError(f"ADMIN_EMAIL is not a valid email: {exc}") from exc
    async with state.sessions() as session:
        users = UserRepository(session)
        user = await users.get_by_email(email)
        if user is None:
            password_hash = await state.hasher.hash(settings.admin_password.get_secret_value())
            try:
                await users.add(User(email=email, password_hash=password_hash, is_admin=True, is_active=True))
                await session.commit()
            except IntegrityError:  # another replica created it first
                await session.rollback()
                return
            log.info("auth.admin.created", email=email)
        elif not (user.is_admin and user.is_active):
            user.is_admin = True
            user.is_active = True
            await session.commit()
            log.info("auth.admin.promoted", email=email)


async def maintain_keys(state: AuthState) -> None:
    """Publish the public keys once Redis answers, then re-read the key directory and re-publish periodically."""
    await wait_for_redis(state.redis, stop=state.stopping)
    next_purge = 0.0
    loop = asyncio.get_running_loop()
    # The loop also watches `stopping`, not only cancellation: a client library that turns a
    # cancellation into its own timeout error must not keep this task alive at shutdown.
    while not state.stopping.is_set():
        try:
            await state.keyring.refresh()
            await publish_public_keys(state.redis, state.keyring.pairs)
            state.keys_published.set()
        except TRANSIENT_REDIS_ERRORS as exc:
            log.warning("auth.key.publish_failed", error=str(exc))
        if state.database_ready.is_set() and loop.time() >= next_purge:
            await purge_expired_tokens(state)
            next_purge = loop.time() + _PURGE_EVERY_S
        await state.pause(state.settings.key_publish_interval_s)


async def purge_expired_tokens(state: AuthState) -> None:
    """Delete refresh and verification tokens that expired (they can no longer be used or reused)."""
    try:
        async with state.sessions() as session:
            deleted = await RefreshTokenRepository(session).delete_expired(before=utc_now())
            # Expired links are kept a week, so that following one answers "expired", not "unknown".
            deleted += await VerificationTokenRepository(session).delete_expired(before=utc_now() - _LINK_GRACE)
            await session.commit()
    except Exception as exc:  # housekeeping must never stop key publishing
        log.warning("auth.tokens.purge_failed", error=f"{type(exc).__name__}: {exc}")
        return
    if deleted:
        log.info("auth.tokens.purged", deleted=deleted)
