"""Notifier settings: the SMTP server, the sender, and retry patience."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import Field, SecretStr

from pricealert.common.settings import ServiceSettings


class SmtpTls(StrEnum):
    """How the SMTP connection is secured."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class NotifierSettings(ServiceSettings):
    """What the notifier reads from the environment."""

    smtp_host: str = Field(default="127.0.0.1", alias="SMTP_HOST")
    smtp_port: int = Field(default=1025, alias="SMTP_PORT", ge=1, le=65535)
    smtp_tls: SmtpTls = Field(default=SmtpTls.NONE, alias="SMTP_TLS")
    smtp_username: str | None = Field(default=None, alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, alias="SMTP_PASSWORD")
    smtp_timeout_s: float = Field(default=10.0, alias="SMTP_TIMEOUT_S", gt=0)
    mail_from: str = Field(default="pricealert <alerts@pricealert.localhost>", alias="MAIL_FROM")
    app_url: str = Field(default="http://localhost:8000", alias="APP_URL")
    concurrency: int = Field(default=8, alias="NOTIFIER_CONCURRENCY", ge=1, le=256)
    # Retries happen when the consumer loop reclaims a failed entry; 40 deliveries 20 s apart keep
    # trying for over 10 minutes before a trigger is given up as failed.
    reclaim_idle_ms: int = Field(default=20_000, alias="NOTIFIER_RECLAIM_IDLE_MS", ge=100)
    max_deliveries: int = Field(default=40, alias="NOTIFIER_MAX_DELIVERIES", ge=1)


@lru_cache
def get_settings() -> NotifierSettings:
    """The process's settings, read once."""
    return NotifierSettings()
