"""Settings of the ingest service, read from the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, model_validator

from pricealert.common.settings import ServiceSettings, load_settings


class IngestSettings(ServiceSettings):
    """Everything the ingest worker can be tuned with."""

    binance_ws_url: str = Field(default="wss://stream.binance.com:9443", validation_alias="BINANCE_WS_URL")
    binance_rest_url: str = Field(default="https://api.binance.com", validation_alias="BINANCE_REST_URL")
    stream_suffix: str = Field(default="trade", pattern="^(trade|aggTrade)$", validation_alias="INGEST_STREAM")
    max_streams_per_connection: int = Field(
        default=1024, ge=1, le=1024, validation_alias="INGEST_MAX_STREAMS_PER_CONNECTION"
    )
    # Binance allows 5 incoming messages/s per connection, pings and pongs included: stay well under.
    control_messages_per_s: float = Field(default=3.0, gt=0, le=4.5, validation_alias="INGEST_CONTROL_MESSAGES_PER_S")
    subscribe_batch_size: int = Field(default=200, ge=1, le=1024, validation_alias="INGEST_SUBSCRIBE_BATCH_SIZE")
    reconnect_first_delay_s: float = Field(default=0.25, ge=0, validation_alias="INGEST_RECONNECT_FIRST_DELAY_S")
    reconnect_max_delay_s: float = Field(default=60.0, gt=0, validation_alias="INGEST_RECONNECT_MAX_DELAY_S")
    connect_attempts_per_5min: int = Field(
        default=250, ge=1, le=300, validation_alias="INGEST_CONNECT_ATTEMPTS_PER_5MIN"
    )
    watchdog_s: float = Field(default=20.0, gt=0, validation_alias="INGEST_WATCHDOG_S")
    watchdog_max_s: float = Field(default=300.0, gt=0, validation_alias="INGEST_WATCHDOG_MAX_S")
    # Binance ends connections at 24 h: rotate (make-before-break) a little earlier, staggered.
    max_connection_age_s: float = Field(default=23 * 3600.0, gt=0, validation_alias="INGEST_MAX_CONNECTION_AGE_S")
    ping_interval_s: float = Field(default=20.0, gt=0, validation_alias="INGEST_PING_INTERVAL_S")
    ping_timeout_s: float = Field(default=20.0, gt=0, validation_alias="INGEST_PING_TIMEOUT_S")
    resync_s: float = Field(default=1.0, gt=0, le=10.0, validation_alias="INGEST_RESYNC_S")
    publish_batch_size: int = Field(default=1000, ge=1, le=10_000, validation_alias="INGEST_PUBLISH_BATCH_SIZE")
    # An idle tick writer waits this long after the first trade before it appends (each batch costs one script call
    # per shard it touches, however few its trades): a bounded delay for far fewer calls at light load.
    # 0: a trade waits for nothing (latency first); a few ms trade latency at light load for CPU per trade.
    publish_linger_ms: float = Field(default=0.0, ge=0, le=50, validation_alias="INGEST_PUBLISH_LINGER_MS")
    queue_size: int = Field(default=200_000, ge=100, validation_alias="INGEST_QUEUE_SIZE")
    dedupe_window: int = Field(default=200_000, ge=100, validation_alias="INGEST_DEDUPE_WINDOW")
    catalog_refresh_s: float = Field(default=3600.0, gt=0, validation_alias="INGEST_CATALOG_REFRESH_S")
    catalog_retry_max_s: float = Field(default=300.0, gt=0, validation_alias="INGEST_CATALOG_RETRY_MAX_S")
    # The exchange's all-symbols ticker (weight 4) is read this often: GET /symbols shows prices at most 10 s old.
    price_snapshot_s: float = Field(default=3.0, ge=0.5, le=8.0, validation_alias="INGEST_PRICE_SNAPSHOT_S")
    catalog_enabled: bool = Field(default=True, validation_alias="INGEST_CATALOG_ENABLED")
    gone_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, validation_alias="INGEST_GONE_TTL_S")
    # Shard leases (common/ownership.py): a dead replica's symbols are resubscribed elsewhere within about a lease.
    shard_lease_ms: int = Field(default=10_000, ge=500, validation_alias="INGEST_SHARD_LEASE_MS")
    shard_interval_s: float = Field(default=2.0, gt=0, validation_alias="INGEST_SHARD_INTERVAL_S")
    # METRICS_HOST/METRICS_PORT, as for every worker; the older INGEST_ names still work and win.
    metrics_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("INGEST_METRICS_HOST", "METRICS_HOST"))
    metrics_port: int = Field(
        default=0, ge=0, le=65535, validation_alias=AliasChoices("INGEST_METRICS_PORT", "METRICS_PORT")
    )
    stats_interval_s: float = Field(default=60.0, gt=0, validation_alias="INGEST_STATS_INTERVAL_S")

    @model_validator(mode="after")
    def _lease_outlasts_renewals(self) -> IngestSettings:
        if self.shard_interval_s * 1000 * 2 >= self.shard_lease_ms:
            raise ValueError("INGEST_SHARD_LEASE_MS must outlast two INGEST_SHARD_INTERVAL_S renewals")
        return self

    def check_production(self) -> None:
        """Refuse the exchange over plain connections in production: altered prices would fire alerts."""
        super().check_production()
        for variable, url, secure in (
            ("BINANCE_WS_URL", self.binance_ws_url, "wss://"),
            ("BINANCE_REST_URL", self.binance_rest_url, "https://"),
        ):
            if not url.strip().lower().startswith(secure):
                raise ValueError(
                    f"{variable} must be a {secure} URL when ENV=production (a plain connection "
                    "lets anyone on the path change the prices)"
                )

    @property
    def ws_stream_url(self) -> str:
        """The combined-stream endpoint every connection opens."""
        base = self.binance_ws_url.rstrip("/")
        for suffix in ("/stream", "/ws"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        return base + "/stream"


@lru_cache
def get_settings() -> IngestSettings:
    """The process-wide settings, built on first use."""
    return load_settings(IngestSettings)
