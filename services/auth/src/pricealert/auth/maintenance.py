"""What an operator does to auth outside a request (the CLI's entry points): migrate, keys, the first admin."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from pricealert.auth.admins import AdminOutcome, ensure_admin
from pricealert.auth.bootstrap import MIGRATIONS, VERSION_TABLE
from pricealert.auth.keys import RETIRED_DIR, ensure_keys, generate_key, live_keys, load_keys, retire_key
from pricealert.auth.rootkey import ensure_root_key, root_public_path, write_public_key
from pricealert.auth.security import PasswordHasher
from pricealert.auth.settings import AuthSettings
from pricealert.common.db import create_engine, session_factory, upgrade_database
from pricealert.common.settings import Environment

__all__ = [
    "MIGRATIONS",
    "VERSION_TABLE",
    "AdminResult",
    "KeyInfo",
    "KeysEnsured",
    "create_admin",
    "ensure_signing_keys",
    "key_dir",
    "list_signing_keys",
    "migrate",
    "retire_signing_key",
    "rotate_signing_key",
]


def migrate(settings: AuthSettings) -> None:
    """Bring the auth database to the newest schema (idempotent; blocking)."""
    upgrade_database(settings.database_url, MIGRATIONS, VERSION_TABLE)


def key_dir() -> Path:
    """AUTH_KEY_DIR, in any environment: ENV=production refuses an empty key directory, which `ensure` fills."""
    return AuthSettings(env=Environment.DEVELOPMENT).key_dir


@dataclass(frozen=True)
class KeysEnsured:
    """What `keys ensure` found or made in AUTH_KEY_DIR."""

    kid: str
    generated: bool
    root_generated: bool
    root_public_key: str  # the file to give verifiers (TOKEN_ROOT_PUBLIC_KEY_FILE)


def ensure_signing_keys(directory: Path, export_root: Path | None = None) -> KeysEnsured:
    """Make sure `directory` holds a signing key and the root key, generating each only if absent.

    With `export_root`, the root's public key is also written there (a volume the verifiers mount).
    """
    existed = bool(load_keys(directory))
    pairs = ensure_keys(directory, allow_generate=True)
    root, root_generated = ensure_root_key(directory, allow_generate=True)
    public = root_public_path(directory)
    if export_root is not None:
        write_public_key(root, export_root)
        public = export_root
    return KeysEnsured(
        kid=pairs[-1].kid, generated=not existed, root_generated=root_generated, root_public_key=str(public)
    )


def rotate_signing_key(directory: Path) -> str:
    """Add a new signing key (it signs new tokens once auth re-reads the folder); its kid."""
    return generate_key(directory).kid


def retire_signing_key(directory: Path, kid: str) -> str:
    """Move the key `kid` to <directory>/retired; ValueError for an unknown kid or the newest key."""
    return str(retire_key(directory, kid))


@dataclass(frozen=True)
class KeyInfo:
    """One signing key on disk and what it is used for."""

    kid: str
    algorithm: str
    created_at: str
    state: str  # signing | published | verifying-refresh | expired | retired


def list_signing_keys() -> list[KeyInfo]:
    """The keys of AUTH_KEY_DIR, oldest first, the retired ones last."""
    settings = AuthSettings(env=Environment.DEVELOPMENT)
    pairs, now = load_keys(settings.key_dir), datetime.now(UTC)
    published = {p.kid for p in live_keys(pairs, max_token_ttl=timedelta(seconds=settings.access_token_ttl_s), now=now)}
    ttl = timedelta(seconds=max(settings.access_token_ttl_s, settings.refresh_token_ttl_s))
    verifying = {p.kid for p in live_keys(pairs, max_token_ttl=ttl, now=now)}

    def state(kid: str, newest: bool) -> str:
        if newest:
            return "signing"
        return "published" if kid in published else "verifying-refresh" if kid in verifying else "expired"

    keys = [KeyInfo(p.kid, p.algorithm, p.created_at.isoformat(), state(p.kid, p is pairs[-1])) for p in pairs]
    retired = load_keys(settings.key_dir / RETIRED_DIR)
    return keys + [KeyInfo(p.kid, p.algorithm, p.created_at.isoformat(), "retired") for p in retired]


@dataclass(frozen=True)
class AdminResult:
    """What create-admin did to the account."""

    user_id: str
    email: str
    action: str  # created | password_reset | unchanged | adopted


async def create_admin(email: str, password: str, *, reset_password: bool = False) -> AdminResult:
    """Create an active admin, or re-password the one create-admin / ADMIN_EMAIL created; never another account."""
    # The same rules as the admin the auth service bootstraps from ADMIN_EMAIL / ADMIN_PASSWORD.
    settings = AuthSettings(admin_email=email, admin_password=SecretStr(password))
    await asyncio.to_thread(migrate, settings)
    engine = create_engine(settings.database_url, application_name="pricealert-cli", pooler=settings.database_pooler)
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
