"""The settings base every service's settings class extends."""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


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
        if self.redis_url == DEFAULT_REDIS_URL:
            raise ValueError("REDIS_URL must be set explicitly when ENV=production")
