"""Operations that need a service's own code: migrations, signing keys, the first admin, the alerts resync.

Each imports its service lazily (pricealert-cli's extras `auth` and `alerts`): the CLI installed next to one
service (a container image) still runs the commands that concern that service, and a health check stays cheap.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pricealert.common.settings import load_settings

if TYPE_CHECKING:
    from pricealert.auth.maintenance import AdminResult, KeyInfo, KeysEnsured

MIGRATED_SERVICES = ("auth", "alerts")


class MissingService(RuntimeError):
    """The command needs a service package that is not installed here."""


def _require(service: str) -> None:
    """MissingService unless pricealert-`service` is installed next to the CLI."""
    if importlib.util.find_spec(f"pricealert.{service}") is None:
        raise MissingService(f"pricealert-{service} is not installed here (pricealert-cli[{service}])")


async def migrate(service: str) -> str:
    """Bring `service`'s database schema to head (idempotent); returns the database URL without password."""
    if service == "auth":
        _require("auth")
        from pricealert.auth import maintenance
        from pricealert.auth.settings import AuthSettings

        settings = load_settings(AuthSettings)
        await asyncio.to_thread(maintenance.migrate, settings)
        return _redacted(settings.database_url)
    if service == "alerts":
        _require("alerts")
        from pricealert.alerts.maintenance import MIGRATIONS, VERSION_TABLE
        from pricealert.alerts.settings import AlertsSettings
        from pricealert.common.db import upgrade_database

        # Not maintenance.migrate: that waits for the database forever, an operator's command fails at once.
        alerts_settings = load_settings(AlertsSettings)
        await asyncio.to_thread(upgrade_database, alerts_settings.database_url, MIGRATIONS, VERSION_TABLE)
        return _redacted(alerts_settings.database_url)
    raise ValueError(f"{service} has no database; choose from {', '.join(MIGRATED_SERVICES)}")


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"


def ensure_signing_keys(export_root: Path | None = None) -> KeysEnsured:
    """Make sure AUTH_KEY_DIR holds a signing key and the root key, generating each only if absent.

    With `export_root`, the root's public key is also written there (a volume the verifiers mount).
    """
    _require("auth")
    from pricealert.auth import maintenance

    return maintenance.ensure_signing_keys(maintenance.key_dir(), export_root)


def rotate_signing_key() -> str:
    """Add a new signing key to AUTH_KEY_DIR (it signs new tokens once auth re-reads the folder); its kid."""
    _require("auth")
    from pricealert.auth import maintenance

    return maintenance.rotate_signing_key(maintenance.key_dir())


def retire_signing_key(kid: str) -> str:
    """Move the key `kid` to AUTH_KEY_DIR/retired; ValueError for an unknown kid or the newest key."""
    _require("auth")
    from pricealert.auth import maintenance

    return maintenance.retire_signing_key(maintenance.key_dir(), kid)


def list_signing_keys() -> list[KeyInfo]:
    """The keys of AUTH_KEY_DIR, oldest first, the retired ones last."""
    _require("auth")
    from pricealert.auth import maintenance

    return maintenance.list_signing_keys()


async def create_admin(email: str, password: str, *, reset_password: bool = False) -> AdminResult:
    """Create an active admin, or re-password the one create-admin / ADMIN_EMAIL created; never another account."""
    _require("auth")
    from pricealert.auth import maintenance

    return await maintenance.create_admin(email, password, reset_password=reset_password)


async def resync_alerts(redis_url: str | None, cluster_url: str = "", shards: int | None = None) -> int:
    """Re-publish alert.created for every active alert (`python -m pricealert.alerts resync`), each to its shard."""
    try:
        from pricealert.alerts.maintenance import resync
        from pricealert.alerts.settings import AlertsSettings
    except ImportError as exc:
        raise MissingService(f"pricealert-alerts is not installed here: {exc}") from exc
    if redis_url is None:
        settings = load_settings(AlertsSettings)
    else:
        # Only what the operator gave: every other setting still comes from the environment.
        given: dict[str, Any] = {"redis_url": redis_url}
        if cluster_url:
            given["redis_cluster_url"] = cluster_url
        if shards:
            given["shards"] = shards
        settings = AlertsSettings(**given)
    return await resync(settings)
