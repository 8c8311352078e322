"""The settings base every service's settings class extends."""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import Literal, Self, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pricealert.common.shards import DEFAULT_SHARDS, MAX_SHARDS

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# What sits between a service and Postgres: "pgbouncer" is a pooler that hands out a server connection per
# transaction (PgBouncer's pool_mode = transaction), so no session state may outlive a transaction.
Pooler = Literal["none", "pgbouncer"]


def database_kind(url: str) -> str:
    """The database a URL names, without its driver: `sqlite`, `postgresql`, `postgres`, ..."""
    return url.partition(":")[0].partition("+")[0].strip().lower()


def refuse_sqlite(url: str, variables: str) -> None:
    """Raise ValueError if `url` names SQLite: one file on one host, for development and tests only."""
    if database_kind(url) == "sqlite":
        raise ValueError(
            f"{variables} names a SQLite database; ENV=production needs a Postgres URL "
            "(postgresql://user:password@host:5432/database)"
        )


class Environment(StrEnum):
    """Where a process runs; production refuses development conveniences."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ServiceSettings(BaseSettings):
    """Settings shared by every service, read from the environment (and `.env`)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    env: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    log_json: bool = False
    redis_url: str = DEFAULT_REDIS_URL
    # Seed URLs (comma-separated redis:// of any nodes) of a Redis Cluster; when set it is used instead of REDIS_URL.
    redis_cluster_url: str = ""
    # Symbols are spread over this many shards (shards.py); every process must agree, and Redis records it.
    shards: int = Field(default=DEFAULT_SHARDS, ge=1, le=MAX_SHARDS)
    consumer_name: str = Field(default_factory=socket.gethostname)
    # The workers' Prometheus endpoint (the APIs serve /metrics on their own port). 0 is off: several
    # workers on one host (`make run`, the tests) would otherwise fight over one port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)

    @model_validator(mode="after")
    def _refuse_development_defaults(self) -> Self:
        if self.env is Environment.PRODUCTION:
            self.check_production()
        return self

    def check_production(self) -> None:
        """Raise ValueError for settings that are unsafe in production; services extend this."""
        if self.redis_url == DEFAULT_REDIS_URL and not self.redis_cluster_url:
            raise ValueError("REDIS_URL (or REDIS_CLUSTER_URL) must be set explicitly when ENV=production")


S = TypeVar("S", bound=ServiceSettings)


def load_settings(settings_class: type[S]) -> S:
    """The settings from the environment; a refused setting ends the process with one clear line per problem.

    pydantic's own message would quote every input value, secrets included, into the start-up log.
    """
    try:
        return settings_class()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) + ': ' if error['loc'] else ''}"
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise SystemExit(f"{settings_class.__name__}: refusing to start: {problems}") from None
