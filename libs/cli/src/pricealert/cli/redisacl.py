"""`pricealert redis acl apply`: one Redis ACL user per service (rules in pricealert.common.acl), from the admin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from pydantic import Field, SecretStr
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pricealert.cli.streams import text
from pricealert.common import acl
from pricealert.common.settings import ServiceSettings

MIN_PRODUCTION_PASSWORD = 16


class AclRefused(RuntimeError):
    """The users cannot be applied as asked (a missing password, or a change that would lock the admin out)."""


class RedisAclSettings(ServiceSettings):
    """The admin connection and one password per Redis user (the CLI's own included)."""

    redis_admin_url: str | None = Field(default=None, validation_alias="REDIS_ADMIN_URL")
    redis_password_auth: SecretStr | None = Field(default=None, validation_alias="REDIS_PASSWORD_AUTH")
    redis_password_alerts: SecretStr | None = Field(default=None, validation_alias="REDIS_PASSWORD_ALERTS")
    redis_password_ingest: SecretStr | None = Field(default=None, validation_alias="REDIS_PASSWORD_INGEST")
    redis_password_evaluator: SecretStr | None = Field(default=None, validation_alias="REDIS_PASSWORD_EVALUATOR")
    redis_password_notifier: SecretStr | None = Field(default=None, validation_alias="REDIS_PASSWORD_NOTIFIER")
    redis_password_cli: SecretStr | None = Field(default=None, validation_alias="REDIS_PASSWORD_CLI")

    def passwords(self) -> dict[str, str]:
        """Each role's password by role name; raises AclRefused naming every variable left unset."""
        found: dict[str, str] = {}
        missing: list[str] = []
        for role in acl.ROLES:
            secret: SecretStr | None = getattr(self, role.password_variable.lower())
            if secret is None or not secret.get_secret_value():
                missing.append(role.password_variable)
            else:
                found[role.name] = secret.get_secret_value()
        if missing:
            raise AclRefused(f"set {', '.join(missing)} (one password per Redis user)")
        return found

    def check_production(self) -> None:
        """Also refuse short passwords, and one password shared by two users."""
        super().check_production()
        given = {role.password_variable: getattr(self, role.password_variable.lower()) for role in acl.ROLES}
        values = [secret.get_secret_value() for secret in given.values() if secret is not None]
        short = [
            name
            for name, secret in given.items()
            if secret is not None and len(secret.get_secret_value()) < MIN_PRODUCTION_PASSWORD
        ]
        if short:
            raise ValueError(f"{', '.join(short)}: at least {MIN_PRODUCTION_PASSWORD} characters in production")
        if len(set(values)) != len(values):
            raise ValueError("every REDIS_PASSWORD_* must differ: a shared password lets one service log in as another")


@dataclass
class AclReport:
    """What apply did."""

    redis_version: str
    selectors: bool
    users: list[str]
    deleted: list[str] = field(default_factory=list)
    default_disabled: bool = False
    saved: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


async def apply(redis: Redis, passwords: Mapping[str, str], *, disable_default: bool = False) -> AclReport:
    """Set every role's user exactly (stale pricealert-* users deleted), optionally switch `default` off, save."""
    version = text((await redis.info("server"))["redis_version"])
    server = acl.ServerAcl.parse(version)
    if disable_default and text(await redis.acl_whoami()) == "default":
        raise AclRefused(
            "connected as `default`: switching it off would lock this admin out; "
            f"connect as another admin user (compose: {acl.ADMIN_USER}, REDIS_ADMIN_URL)"
        )
    report = AclReport(version, server.selectors, users=[role.user for role in acl.ROLES])
    for role in acl.ROLES:
        rules = acl.rules(role, [acl.password_hash(passwords[role.name])], server)
        await _setuser(redis, role.user, rules)
    for user in map(text, await redis.acl_users()):
        if user.startswith(acl.USER_PREFIX) and user not in report.users and user != acl.ADMIN_USER:
            await redis.acl_deluser(user)
            report.deleted.append(user)
    if disable_default:
        await _setuser(redis, "default", acl.disabled_default_rules())
        report.default_disabled = True
    report.saved = await _save(redis)
    return report


async def _setuser(redis: Redis, user: str, rules: Sequence[str]) -> None:
    """ACL SETUSER with the rules as written (redis-py's acl_setuser knows no selectors on every version)."""
    command = cast(Callable[..., Awaitable[Any]], redis.execute_command)
    await command("ACL", "SETUSER", user, *rules)


async def _save(redis: Redis) -> bool:
    """ACL SAVE when the server has an ACL file (the users then survive a restart); False when it has none."""
    try:
        await redis.acl_save()
    except ResponseError as exc:
        if "ACL file" not in str(exc):
            raise
        return False
    return True
