"""Settings of the alerts service, read from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, field_validator, model_validator

from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR, load_root_public_key
from pricealert.common.settings import (
    Environment,
    Pooler,
    ServiceSettings,
    database_kind,
    load_settings,
    refuse_sqlite,
)
from pricealert.common.urlguard import ChannelTargetSettings, TargetPolicy

DEFAULT_DATABASE_URL = "sqlite:///var/alerts.db"
# Where auth writes the root's public half under its default AUTH_KEY_DIR (development on one machine).
DEFAULT_TOKEN_ROOT_PUBLIC_KEY_FILE = Path("var/keys") / ROOT_PUBLIC_KEY_IN_KEY_DIR


def _is_postgres(url: str) -> bool:
    return database_kind(url) in {"postgres", "postgresql"}


class AlertsSettings(ChannelTargetSettings, ServiceSettings):
    """Everything the alerts processes (the API, the worker, the maintenance commands) can be tuned with."""

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, validation_alias=AliasChoices("ALERTS_DATABASE_URL", "DATABASE_URL")
    )
    # Listings (GET /alerts) only: a replica of the database, which may lag; unset, they read the primary too.
    database_read_url: str | None = Field(default=None, validation_alias="ALERTS_DATABASE_READ_URL")
    database_pooler: Pooler = Field(
        default="none", validation_alias=AliasChoices("ALERTS_DATABASE_POOLER", "DATABASE_POOLER")
    )
    host: str = Field(default="127.0.0.1", validation_alias="ALERTS_HOST")
    port: int = Field(default=8102, ge=1, le=65535, validation_alias="ALERTS_PORT")
    # The one key this service trusts by configuration: signing keys count only with its signature.
    token_root_public_key_file: Path = Field(
        default=DEFAULT_TOKEN_ROOT_PUBLIC_KEY_FILE, validation_alias="TOKEN_ROOT_PUBLIC_KEY_FILE"
    )
    # API processes of `python -m pricealert.alerts serve` (one event loop each, one CPU core each).
    workers: int = Field(default=2, ge=1, le=64, validation_alias="ALERTS_WORKERS")
    # SQLAlchemy's pool (background tasks, deletes; everything on SQLite); overflow connections are closed
    # after use, so the pool should cover what one process has in flight.
    db_pool_size: int = Field(default=10, ge=1, le=200, validation_alias="ALERTS_DB_POOL_SIZE")
    db_max_overflow: int = Field(default=10, ge=0, le=200, validation_alias="ALERTS_DB_MAX_OVERFLOW")
    # On Postgres, the asyncpg pool of the request paths (create, list, get).
    pg_pool_size: int = Field(default=16, ge=1, le=200, validation_alias="ALERTS_PG_POOL_SIZE")
    # The API's bound on each statement, lock waits included (0: none); past it the request answers 503
    # database_unavailable. The worker's statements have none. Behind PgBouncer, set statement_timeout on the role.
    db_statement_timeout_s: float = Field(default=5.0, ge=0, le=600, validation_alias="ALERTS_DB_STATEMENT_TIMEOUT_S")
    max_active_per_user: int = Field(default=500, ge=1, validation_alias="ALERTS_MAX_ACTIVE_PER_USER")
    # The loops of `python -m pricealert.alerts worker`; switching the relay off leaves events in the outbox.
    relay_enabled: bool = Field(default=True, validation_alias="ALERTS_RELAY_ENABLED")
    consumers_enabled: bool = Field(default=True, validation_alias="ALERTS_CONSUMERS_ENABLED")
    expiry_enabled: bool = Field(default=True, validation_alias="ALERTS_EXPIRY_ENABLED")
    # How often the worker's relay looks for staged events (one cheap read): the commit-to-stream latency.
    relay_poll_s: float = Field(default=0.01, gt=0, le=5.0, validation_alias="ALERTS_RELAY_POLL_S")
    relay_batch_size: int = Field(default=500, ge=1, le=10_000, validation_alias="ALERTS_RELAY_BATCH_SIZE")
    expiry_sweep_s: float = Field(default=1.0, gt=0, le=5.0, validation_alias="ALERTS_EXPIRY_SWEEP_S")
    catalog_refresh_s: float = Field(default=60.0, gt=0, validation_alias="ALERTS_CATALOG_REFRESH_S")
    catalog_min_refresh_s: float = Field(default=2.0, ge=0, validation_alias="ALERTS_CATALOG_MIN_REFRESH_S")
    consumer_block_ms: int = Field(default=1_000, ge=10, le=2_000, validation_alias="ALERTS_CONSUMER_BLOCK_MS")
    consumer_reclaim_idle_ms: int = Field(default=30_000, ge=100, validation_alias="ALERTS_RECLAIM_IDLE_MS")
    # Channels (docs/channels.md): how many a user may hold, how long a test send is waited for, and how often
    # the worker writes every channel to the notifier's registry again (heals a publish lost after a commit).
    max_channels_per_user: int = Field(default=20, ge=1, le=1000, validation_alias="ALERTS_MAX_CHANNELS_PER_USER")
    channel_test_timeout_s: float = Field(default=15.0, gt=0, le=60, validation_alias="ALERTS_CHANNEL_TEST_TIMEOUT_S")
    channel_resync_s: float = Field(default=30.0, gt=0, validation_alias="ALERTS_CHANNEL_RESYNC_S")
    # The live feed (docs/feed.md): the worker's feed writer, and GET /events of the API.
    feed_writer_enabled: bool = Field(default=True, validation_alias="ALERTS_FEED_WRITER_ENABLED")
    feed_ping_s: float = Field(default=15.0, gt=0, le=60.0, validation_alias="ALERTS_FEED_PING_S")
    # Each feed holds one connection of the feed's own Redis pool: at most this many feeds per API process.
    feed_max_streams: int = Field(default=200, ge=1, le=10_000, validation_alias="ALERTS_FEED_MAX_STREAMS")
    feed_max_per_user: int = Field(default=5, ge=1, le=100, validation_alias="ALERTS_FEED_MAX_PER_USER")

    def channel_target_policy(self) -> TargetPolicy:
        """The SSRF guard's policy for channel targets: https only in production."""
        return self.target_policy(production=self.env is Environment.PRODUCTION)

    @field_validator("database_read_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # compose passes an unset variable through as empty

    @model_validator(mode="after")
    def _replica_reads_need_postgres(self) -> Self:
        """A read URL only beside a Postgres primary, and itself Postgres (SQLite has no replicas)."""
        read = self.database_read_url
        if read is not None and not (_is_postgres(self.database_url) and _is_postgres(read)):
            raise ValueError("ALERTS_DATABASE_READ_URL needs a Postgres URL there and in ALERTS_DATABASE_URL")
        return self

    def check_production(self) -> None:
        """Refuse SQLite (the development default or any other file) and a missing token root key in production."""
        super().check_production()
        refuse_sqlite(self.database_url, "ALERTS_DATABASE_URL (or DATABASE_URL)")
        if self.token_root_public_key_file == DEFAULT_TOKEN_ROOT_PUBLIC_KEY_FILE:
            raise ValueError("TOKEN_ROOT_PUBLIC_KEY_FILE must be set explicitly when ENV=production")
        try:
            load_root_public_key(self.token_root_public_key_file)
        except (OSError, ValueError) as exc:
            raise ValueError(f"TOKEN_ROOT_PUBLIC_KEY_FILE is not a readable Ed25519 public key: {exc}") from exc


@lru_cache
def get_settings() -> AlertsSettings:
    """The process-wide settings, built on first use."""
    return load_settings(AlertsSettings)
