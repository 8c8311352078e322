"""Start-up work that waits for its dependencies: migrations, the first admin, key publishing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import structlog
from redis.exceptions import RedisError

from pricealert.auth import admins
from pricealert.auth.admins import AdminOutcome
from pricealert.auth.handlers import publish_public_keys
from pricealert.auth.repository import RefreshTokenRepository, VerificationTokenRepository
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
    """Create the admin named by ADMIN_EMAIL / ADMIN_PASSWORD, or set its password (rules: admins.py)."""
    settings = state.settings
    if settings.admin_email is None or settings.admin_password is None:
        return
    async with state.sessions() as session:
        result = await admins.ensure_admin(
            session, state.hasher, settings.admin_email, settings.admin_password.get_secret_value(), set_password=True
        )
    if result.outcome is AdminOutcome.REFUSED:
        log.error(
            "auth.admin.bootstrap_refused",
            email=result.email,
            user_id=result.user_id,
            reason="ADMIN_EMAIL names an account the bootstrap did not create; it is left alone",
        )
    elif result.outcome is not AdminOutcome.UNCHANGED:
        log.info(f"auth.admin.{result.outcome.value}", email=result.email, user_id=result.user_id)


async def maintain_keys(state: AuthState) -> None:
    """Publish the public keys once Redis answers, then re-read the key directory and re-publish periodically.

    Each publication vouches for a key for AUTH_KEY_VALIDITY_S only, so a key retired from the directory
    (or past its successor plus an access token's lifetime) stops verifying anywhere soon after.
    """
    await wait_for_redis(state.redis, stop=state.stopping)
    next_purge = 0.0
    loop = asyncio.get_running_loop()
    validity = timedelta(seconds=state.settings.key_validity_s)
    published: list[str] = []
    # The loop also watches `stopping`, not only cancellation: a client library that turns a
    # cancellation into its own timeout error must not keep this task alive at shutdown.
    while not state.stopping.is_set():
        try:
            await state.keyring.refresh()
            kids = await publish_public_keys(
                state.redis, state.keyring.published, state.keyring.root, validity=validity
            )
            if kids != published:
                log.info("auth.key.published", kids=kids, withdrawn=sorted(set(published) - set(kids)))
                published = kids
            state.keys_published.set()
        except (*TRANSIENT_REDIS_ERRORS, RedisError) as exc:
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
