"""Operations that need a service's own code: migrations, signing keys, the first admin, the alerts resync.

Each imports its service (and SQLAlchemy) lazily: the CLI installed next to one service (a container
image) still runs the commands that concern that service, and a health check stays cheap.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pricealert.common.settings import load_settings

MIGRATED_SERVICES = ("auth", "alerts")


class MissingService(RuntimeError):
    """The command needs a service package that is not installed here."""


def _migrations_of(service: str) -> tuple[Any, Path, str]:
    """The settings, migration folder and version table of `service`."""
    try:
        if service == "auth":
            from pricealert.auth.bootstrap import MIGRATIONS, VERSION_TABLE
            from pricealert.auth.settings import AuthSettings

            return load_settings(AuthSettings), MIGRATIONS, VERSION_TABLE
        if service == "alerts":
            from pricealert.alerts.maintenance import MIGRATIONS as ALERTS_MIGRATIONS
            from pricealert.alerts.maintenance import VERSION_TABLE as ALERTS_VERSION_TABLE
            from pricealert.alerts.settings import AlertsSettings

            return load_settings(AlertsSettings), ALERTS_MIGRATIONS, ALERTS_VERSION_TABLE
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


@dataclass(frozen=True)
class KeysEnsured:
    """What `keys ensure` found or made in AUTH_KEY_DIR."""

    kid: str
    generated: bool
    root_generated: bool
    root_public_key: str  # the file to give verifiers (TOKEN_ROOT_PUBLIC_KEY_FILE)


def _key_dir() -> Path:
    try:
        from pricealert.auth.settings import AuthSettings
    except ImportError as exc:
        raise MissingService(f"pricealert-auth is not installed here: {exc}") from exc
    from pricealert.common.settings import Environment

    # ENV=production refuses an empty key directory, which is exactly what `keys ensure` fills.
    return AuthSettings(env=Environment.DEVELOPMENT).key_dir


def ensure_signing_keys(export_root: Path | None = None) -> KeysEnsured:
    """Make sure AUTH_KEY_DIR holds a signing key and the root key, generating each only if absent.

    With `export_root`, the root's public key is also written there (a volume the verifiers mount).
    """
    key_dir = _key_dir()
    from pricealert.auth.keys import ensure_keys, load_keys
    from pricealert.auth.rootkey import ensure_root_key, root_public_path, write_public_key

    existed = bool(load_keys(key_dir))
    pairs = ensure_keys(key_dir, allow_generate=True)
    root, root_generated = ensure_root_key(key_dir, allow_generate=True)
    public = root_public_path(key_dir)
    if export_root is not None:
        write_public_key(root, export_root)
        public = export_root
    return KeysEnsured(
        kid=pairs[-1].kid, generated=not existed, root_generated=root_generated, root_public_key=str(public)
    )


def rotate_signing_key() -> str:
    """Add a new signing key to AUTH_KEY_DIR (it signs new tokens once auth re-reads the folder); its kid."""
    key_dir = _key_dir()
    from pricealert.auth.keys import generate_key

    return generate_key(key_dir).kid


def retire_signing_key(kid: str) -> str:
    """Move the key `kid` to AUTH_KEY_DIR/retired; ValueError for an unknown kid or the newest key."""
    key_dir = _key_dir()
    from pricealert.auth.keys import retire_key

    return str(retire_key(key_dir, kid))


@dataclass(frozen=True)
class KeyInfo:
    """One signing key on disk and what it is used for."""

    kid: str
    algorithm: str
    created_at: str
    state: str  # signing | published | verifying-refresh | expired | retired


def list_signing_keys() -> list[KeyInfo]:
    """The keys of AUTH_KEY_DIR, oldest first, the retired ones last."""
    from datetime import UTC, datetime, timedelta

    from pricealert.auth.keys import RETIRED_DIR, live_keys, load_keys
    from pricealert.auth.settings import AuthSettings
    from pricealert.common.settings import Environment

    settings = AuthSettings(env=Environment.DEVELOPMENT)
    pairs, now = load_keys(settings.key_dir), datetime.now(UTC)
    published = {p.kid for p in live_keys(pairs, max_token_ttl=timedelta(seconds=settings.access_token_ttl_s), now=now)}
    ttl = timedelta(seconds=max(settings.access_token_ttl_s, settings.refresh_token_ttl_s))
    verifying = {p.kid for p in live_keys(pairs, max_token_ttl=ttl, now=now)}
    keys = [
        KeyInfo(
            kid=p.kid,
            algorithm=p.algorithm,
            created_at=p.created_at.isoformat(),
            state="signing"
            if p is pairs[-1]
            else "published"
            if p.kid in published
            else "verifying-refresh"
            if p.kid in verifying
            else "expired",
        )
        for p in pairs
    ]
    retired = load_keys(settings.key_dir / RETIRED_DIR)
    return keys + [
        KeyInfo(kid=p.kid, algorithm=p.algorithm, created_at=p.created_at.isoformat(), state="retired") for p in retired
    ]


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
            result = await ensure_admin(
                session, PasswordHasher(settings.bcrypt_rounds), email, password, set_password=reset_password
            )
    finally:
        await engine.dispose()
    if result.outcome is AdminOutcome.REFUSED:
        raise ValueError(
            f"{result.email} is an account that create-admin did not create (anyone may have "
            "registered it); it is left alone. Create an admin with another email, and promote "
            "this account from there once you know whose it is."
        )
    action = "password_reset" if result.outcome is AdminOutcome.PASSWORD_SET else result.outcome.value
    return AdminResult(result.user_id, result.email, action)


async def resync_alerts(redis_url: str | None) -> int:
    """Re-publish alert.created for every active alert (`python -m pricealert.alerts resync`)."""
    try:
        from pricealert.alerts.maintenance import resync
        from pricealert.alerts.settings import AlertsSettings
    except ImportError as exc:
        raise MissingService(f"pricealert-alerts is not installed here: {exc}") from exc
    settings = load_settings(AlertsSettings) if redis_url is None else AlertsSettings(redis_url=redis_url)
    return await resync(settings)
