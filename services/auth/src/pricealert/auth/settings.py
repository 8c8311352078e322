"""Auth service settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Self

from email_validator import EmailNotValidError, validate_email
from pydantic import AliasChoices, Field, SecretStr, model_validator

from pricealert.auth.origins import origin_of
from pricealert.auth.rootkey import root_private_path
from pricealert.common.settings import Pooler, ServiceSettings, load_settings, refuse_sqlite

DEFAULT_DATABASE_URL = "sqlite:///var/auth.db"
_WEAK_ADMIN_PASSWORDS = {"admin", "administrator", "changeme", "change-me", "password", "secret"}
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


class AuthSettings(ServiceSettings):
    """What the auth service reads from the environment."""

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("AUTH_DATABASE_URL", "DATABASE_URL"),
    )
    database_pooler: Pooler = Field(
        default="none", validation_alias=AliasChoices("AUTH_DATABASE_POOLER", "DATABASE_POOLER")
    )
    # Each statement's bound, lock waits included (0: none); past it the request answers 503 database_unavailable.
    # Behind PgBouncer, set statement_timeout on the role instead.
    db_statement_timeout_s: float = Field(default=5.0, ge=0, le=600, validation_alias="AUTH_DB_STATEMENT_TIMEOUT_S")
    host: str = Field(default="127.0.0.1", validation_alias="AUTH_HOST")
    port: int = Field(default=8101, validation_alias="AUTH_PORT", ge=1, le=65535)
    forwarded_allow_ips: str = Field(default="127.0.0.1", validation_alias="AUTH_FORWARDED_ALLOW_IPS")
    key_dir: Path = Field(default=Path("var/keys"), validation_alias="AUTH_KEY_DIR")
    access_token_ttl_s: int = Field(default=900, validation_alias="AUTH_ACCESS_TOKEN_TTL_S", ge=10, le=24 * 3600)
    refresh_token_ttl_s: int = Field(default=14 * 24 * 3600, validation_alias="AUTH_REFRESH_TOKEN_TTL_S", ge=60)
    bcrypt_rounds: int = Field(default=12, validation_alias="AUTH_BCRYPT_ROUNDS", ge=4, le=31)
    login_window_s: int = Field(default=900, validation_alias="AUTH_LOGIN_WINDOW_S", ge=1)
    login_max_failures_account_address: int = Field(
        default=5,
        validation_alias="AUTH_LOGIN_MAX_FAILURES_ACCOUNT_ADDRESS",
        ge=1,
    )
    login_max_failures_address: int = Field(default=100, validation_alias="AUTH_LOGIN_MAX_FAILURES_ADDRESS", ge=1)
    login_max_failures_account: int = Field(default=20, validation_alias="AUTH_LOGIN_MAX_FAILURES_ACCOUNT", ge=1)
    login_known_address_ttl_s: int = Field(
        default=30 * 24 * 3600, validation_alias="AUTH_LOGIN_KNOWN_ADDRESS_TTL_S", ge=1
    )
    key_publish_interval_s: float = Field(default=15.0, validation_alias="AUTH_KEY_PUBLISH_INTERVAL_S", gt=0)
    # How long a published key statement vouches for its key: a retired key stops verifying elsewhere
    # at most this long (plus the verifiers' clock-skew allowance) after auth last re-published it.
    key_validity_s: float = Field(default=45.0, validation_alias="AUTH_KEY_VALIDITY_S", ge=1, le=3600)
    # Self-service registration: an address must be verified before alert mail goes to it.
    require_verified_email: bool = Field(default=True, validation_alias="AUTH_REQUIRE_VERIFIED_EMAIL")
    verify_token_ttl_s: int = Field(default=24 * 3600, validation_alias="AUTH_VERIFY_TOKEN_TTL_S", ge=60)
    register_window_s: int = Field(default=3600, validation_alias="AUTH_REGISTER_WINDOW_S", ge=1)
    register_max_per_address: int = Field(default=10, validation_alias="AUTH_REGISTER_MAX_PER_ADDRESS", ge=1)
    verify_resend_max_per_account: int = Field(default=3, validation_alias="AUTH_VERIFY_RESEND_MAX_PER_ACCOUNT", ge=1)
    # The site's public URL: the browser session's routes also accept requests whose Origin is this URL's.
    app_url: str = Field(default="http://localhost:8000", validation_alias="APP_URL")
    admin_email: str | None = Field(default=None, validation_alias="ADMIN_EMAIL")
    admin_password: SecretStr | None = Field(default=None, validation_alias="ADMIN_PASSWORD")

    @model_validator(mode="after")
    def _keys_outlive_a_missed_publish(self) -> Self:
        if self.key_validity_s < 2 * self.key_publish_interval_s:
            raise ValueError(
                "AUTH_KEY_VALIDITY_S must be at least twice AUTH_KEY_PUBLISH_INTERVAL_S, so that "
                "one missed publication does not make every token fail"
            )
        return self

    @model_validator(mode="after")
    def _app_url_names_a_site(self) -> Self:
        if origin_of(self.app_url) is None:
            raise ValueError("APP_URL must be an http:// or https:// URL naming a host (the page's address)")
        return self

    @model_validator(mode="after")
    def _admin_pair(self) -> Self:
        if (self.admin_email is None) != (self.admin_password is None):
            raise ValueError("set ADMIN_EMAIL and ADMIN_PASSWORD together, or neither")
        if self.admin_email is not None:
            try:
                validate_email(self.admin_email, check_deliverability=False)
            except EmailNotValidError as exc:
                raise ValueError(f"ADMIN_EMAIL is not a valid email: {exc}") from exc
        if self.admin_password is not None:
            length = len(self.admin_password.get_secret_value())
            if not MIN_PASSWORD_LENGTH <= length <= MAX_PASSWORD_LENGTH:
                raise ValueError(f"ADMIN_PASSWORD must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
        return self

    def check_production(self) -> None:
        """Refuse SQLite, generated keys, weak admin passwords, a forgeable client address and the development
        Redis in production."""
        super().check_production()
        refuse_sqlite(self.database_url, "AUTH_DATABASE_URL (or DATABASE_URL)")
        if self.forwarded_allow_ips.strip() == "*":
            raise ValueError(
                "AUTH_FORWARDED_ALLOW_IPS=* believes any peer's X-Forwarded-For (a forged client "
                "address escapes the login limits); name the gateway's address when ENV=production"
            )
        if not any(self.key_dir.glob("*.pem")):
            raise ValueError(
                f"AUTH_KEY_DIR ({self.key_dir}) holds no signing key; create one with "
                "`pricealert keys ensure` when ENV=production"
            )
        if not root_private_path(self.key_dir).is_file():
            raise ValueError(
                f"AUTH_KEY_DIR ({self.key_dir}) holds no root key; create it with "
                "`pricealert keys ensure` when ENV=production"
            )
        if self.bcrypt_rounds < 10:
            raise ValueError("AUTH_BCRYPT_ROUNDS must be at least 10 when ENV=production")
        if self.admin_password is not None:
            password = self.admin_password.get_secret_value()
            if len(password) < 12 or password.lower() in _WEAK_ADMIN_PASSWORDS:
                raise ValueError("ADMIN_PASSWORD must be at least 12 characters and not a placeholder")


@lru_cache
def get_settings() -> AuthSettings:
    """The process's settings, read once."""
    return load_settings(AuthSettings)
