"""Notifier settings: the SMTP server, the sender, concurrency and retry patience."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Self

from pydantic import Field, SecretStr, model_validator

from pricealert.common.settings import ServiceSettings, load_settings
from pricealert.common.urlguard import ChannelTargetSettings


class SmtpTls(StrEnum):
    """How the SMTP connection is secured."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class NotifierSettings(ServiceSettings, ChannelTargetSettings):
    """What the notifier reads from the environment."""

    smtp_host: str = Field(default="127.0.0.1", validation_alias="SMTP_HOST")
    smtp_port: int = Field(default=1025, validation_alias="SMTP_PORT", ge=1, le=65535)
    smtp_tls: SmtpTls = Field(default=SmtpTls.NONE, validation_alias="SMTP_TLS")
    smtp_username: str | None = Field(default=None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, validation_alias="SMTP_PASSWORD")
    # Off only for tests against self-signed certificates; SMTP_CA_FILE trusts a private CA instead.
    smtp_validate_certs: bool = Field(default=True, validation_alias="SMTP_VALIDATE_CERTS")
    smtp_ca_file: str | None = Field(default=None, validation_alias="SMTP_CA_FILE")
    smtp_timeout_s: float = Field(default=10.0, validation_alias="SMTP_TIMEOUT_S", gt=0)
    # The whole SMTP transaction of one mail (connect, MAIL, RCPT, DATA) must finish within this.
    send_timeout_s: float = Field(default=30.0, validation_alias="NOTIFIER_SEND_TIMEOUT_S", gt=0)
    mail_from: str = Field(default="pricealert <alerts@pricealert.localhost>", validation_alias="MAIL_FROM")
    app_url: str = Field(default="http://localhost:8000", validation_alias="APP_URL")
    concurrency: int = Field(default=16, validation_alias="NOTIFIER_CONCURRENCY", ge=1, le=256)
    # Transient failures are retried on a jittered exponential schedule for at least retry_for_s.
    retry_for_s: float = Field(default=900.0, validation_alias="NOTIFIER_RETRY_FOR_S", ge=0)
    backoff_base_s: float = Field(default=1.0, validation_alias="NOTIFIER_BACKOFF_BASE_S", gt=0)
    backoff_max_s: float = Field(default=60.0, validation_alias="NOTIFIER_BACKOFF_MAX_S", gt=0)
    # Entries of a dead replica are taken over after this idle time (triggers stream and retry queue).
    reclaim_idle_ms: int = Field(default=20_000, validation_alias="NOTIFIER_RECLAIM_IDLE_MS", ge=100)
    # Only a safety net for entries that crash the handler: retries go through the retry queue, so
    # a stream entry is redelivered only after a replica died or while another one holds its lease.
    max_deliveries: int = Field(default=100, validation_alias="NOTIFIER_MAX_DELIVERIES", ge=1)
    # Webhook and Apprise deliveries: retried on their own jittered exponential schedule for at least this long
    # (receivers go down for hours; the contract promises at least 24 h), then failed.
    webhook_retry_for_s: float = Field(default=90_000.0, validation_alias="NOTIFIER_WEBHOOK_RETRY_FOR_S", ge=0)
    webhook_backoff_base_s: float = Field(default=2.0, validation_alias="NOTIFIER_WEBHOOK_BACKOFF_BASE_S", gt=0)
    webhook_backoff_max_s: float = Field(default=3600.0, validation_alias="NOTIFIER_WEBHOOK_BACKOFF_MAX_S", gt=0)

    # Webhooks and Apprise
    # One webhook request (connect, send, answer) must finish within this; the body is then read until it too.
    webhook_timeout_s: float = Field(default=10.0, validation_alias="NOTIFIER_WEBHOOK_TIMEOUT_S", gt=0)
    # Requests in flight to one destination host; a delivery finding them all busy is retried later, so one
    # slow endpoint holds at most this many of the webhook_concurrency places and delays no one else.
    webhook_per_host: int = Field(default=8, validation_alias="NOTIFIER_WEBHOOK_PER_HOST", ge=1, le=256)
    webhook_concurrency: int = Field(default=64, validation_alias="NOTIFIER_WEBHOOK_CONCURRENCY", ge=1, le=1024)
    # A CA to trust besides the public ones (self-hosted receivers with a private CA; tests).
    webhook_ca_file: str | None = Field(default=None, validation_alias="NOTIFIER_WEBHOOK_CA_FILE")
    # Apprise notifications run in worker threads (its plugins block): this many at once, each within the timeout.
    apprise_timeout_s: float = Field(default=15.0, validation_alias="NOTIFIER_APPRISE_TIMEOUT_S", gt=0)
    apprise_concurrency: int = Field(default=8, validation_alias="NOTIFIER_APPRISE_CONCURRENCY", ge=1, le=64)

    @model_validator(mode="after")
    def _backoff_is_ordered(self) -> Self:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("NOTIFIER_BACKOFF_MAX_S must not be below NOTIFIER_BACKOFF_BASE_S")
        if self.webhook_backoff_max_s < self.webhook_backoff_base_s:
            raise ValueError("NOTIFIER_WEBHOOK_BACKOFF_MAX_S must not be below NOTIFIER_WEBHOOK_BACKOFF_BASE_S")
        return self

    @property
    def lease_ms(self) -> int:
        """How long a send lease lasts: the send deadline plus a margin for recording the outcome."""
        return int((self.send_timeout_s + min(5.0, self.send_timeout_s)) * 1000)

    def check_production(self) -> None:
        """Refuse SMTP credentials over a plain connection and skipped certificate checks in production."""
        super().check_production()
        if self.smtp_tls is SmtpTls.NONE and (self.smtp_username or self.smtp_password):
            raise ValueError(
                "SMTP_USERNAME/SMTP_PASSWORD would cross the network in clear with SMTP_TLS=none; "
                "set SMTP_TLS=starttls or tls when ENV=production"
            )
        if self.smtp_tls is not SmtpTls.NONE and not self.smtp_validate_certs:
            raise ValueError("SMTP_VALIDATE_CERTS=false is for tests only, not ENV=production")


@lru_cache
def get_settings() -> NotifierSettings:
    """The process's settings, read once."""
    return load_settings(NotifierSettings)
