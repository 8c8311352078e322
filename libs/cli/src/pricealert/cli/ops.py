"""Operations that need a service's own code: migrations, signing keys, the first admin, the alerts resync.

Each imports its service (and SQLAlchemy) lazily: the CLI installed next to one service (a container
image) still runs the commands that concern that service, and a health check stays cheap.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATED_SERVICES = ("auth", "alerts")


class MissingService(RuntimeError):
    """The command needs a service package that is not installed here."""


def _migrations_of(service: str) -> tuple[Any, Path, str]:
    """The settings, migration folder and version table of `service`."""
    try:
        if service == "auth":
            from pricealert.auth.bootstrap import MIGRATIONS, VERSION_TABLE
            from pricealert.auth.settings import AuthSettings

            return AuthSettings(), MIGRATIONS, VERSION_TABLE
        if service == "alerts":
            from pricealert.alerts.main import MIGRATIONS as ALERTS_MIGRATIONS
            from pricealert.alerts.main import VERSION_TABLE as ALERTS_VERSION_TABLE
            from pricealert.alerts.settings import AlertsSettings

            return AlertsSettings(), ALERTS_MIGRATIONS, ALERTS_VERSION_TABLE
    except ImportError as exc:
        raise MissingService(f"pricealert-{service} is not installed here: {exc}") from exc
    raise ValueError(f"{service} has no database; choose from {', '.join(MIGRATED_SERVICES)}")


async def migrate(service: str) -> str:
    """Bring `service`'s database schema to head (idempotent); returns the database URL without password."""
    from pricealert.common.db import upgrade_database

    settings, migrations, version_table = _migrations_of(service)
    await asyncio.to_thread(upgrade_database, settings.database_url, migrations, version_table)
    return _redacted(settings.database_url)


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"


def ensure_signing_key() -> tuple[str, bool]:
    """Make sure AUTH_KEY_DIR holds a signing key, generating one only if it holds none; (kid, generated)."""
    try:
        from pricealert.auth.keys import ensure_keys, load_keys
        from pricealert.auth.settings import AuthSettings
    except ImportError as exc:
        raise MissingService(f"pricealert-auth is not installed here: {exc}") from exc
    from pricealert.common.settings import Environment

    # ENV=production refuses an empty key directory, which is exactly what this fills.
    key_dir = AuthSettings(env=Environment.DEVELOPMENT).key_dir
    existed = bool(load_keys(key_dir))
    pairs = ensure_keys(key_dir, allow_generate=True)
    return pairs[-1].kid, not existed


@dataclass(frozen=True)
class AdminResult:
    """What create-admin did to the account."""

    user_id: str
    email: str
    action: str  # created | password_reset | unchanged | adopted


async def create_admin(email: str, password: str, *, reset_password: bool = False) -> AdminResult:
    """Create an active admin, or re-password the one create-admin / ADMIN_EMAIL created; never another account."""
    try:
        from pricealert.auth.admins import AdminOutcome, ensure_admin
        from pricealert.auth.bootstrap import MIGRATIONS, VERSION_TABLE
        from pricealert.auth.security import PasswordHasher
        from pricealert.auth.settings import AuthSettings
    except ImportError as exc:
        raise MissingService(f"pricealert-auth is not installed here: {exc}") from exc
    from pydantic import SecretStr

    from pricealert.common.db import create_engine, session_factory, upgrade_database

    # The same rules as the admin the auth service bootstraps from ADMIN_EMAIL / ADMIN_PASSWORD.
    settings = AuthSettings(admin_email=email, admin_password=SecretStr(password))
    await asyncio.to_thread(upgrade_database, settings.database_url, MIGRATIONS, VERSION_TABLE)
    engine = create_engine(settings.database_url, application_name="pricealert-cli")
    try:
        async with session_factory(engine)() as session:
            result = await ensure_admin(session, PasswordHasher(settings.bcrypt_rounds), email, password,
                                        set_password=reset_password)
    finally:
        await engine.dispose()
    if result.outcome is AdminOutcome.REFUSED:
        raise ValueError(f"{result.email} is an account that create-admin did not create (anyone may have "
                         "registered it); it is left alone. Create an admin with another email, and promote "
                         "this account from there once you know whose it is.")
    action = "password_reset" if result.outcome is AdminOutcome.PASSWORD_SET else result.outcome.value
    return AdminResult(result.user_id, result.email, action)


async def resync_alerts(redis_url: str | None) -> int:
    """Re-publish alert.created for every active alert (`python -m pricealert.alerts resync`)."""
    try:
        from pricealert.alerts.__main__ import resync
        from pricealert.alerts.settings import AlertsSettings
    except ImportError as exc:
        raise MissingService(f"pricealert-alerts is not installed here: {exc}") from exc
    settings = AlertsSettings() if redis_url is None else AlertsSettings(redis_url=redis_url)
    return await resync(settings)
