"""Evaluator settings."""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from pydantic import Field, model_validator

from pricealert.common.ownership import DEFAULT_INTERVAL_S, DEFAULT_LEASE_MS
from pricealert.common.settings import ServiceSettings, load_settings


class EvaluatorSettings(ServiceSettings):
    """What the evaluator reads from the environment."""

    tick_batch_size: int = Field(default=2000, validation_alias="EVALUATOR_TICK_BATCH_SIZE", ge=1, le=4_000)
    reclaim_idle_ms: int = Field(default=10_000, validation_alias="EVALUATOR_RECLAIM_IDLE_MS", ge=100)
    max_deliveries: int = Field(default=5, validation_alias="EVALUATOR_MAX_DELIVERIES", ge=1)
    # docs/conditions.md: the firing that makes a recurring alert's limit-th within an hour pauses it.
    firings_per_hour: int = Field(default=60, validation_alias="EVALUATOR_FIRINGS_PER_HOUR", ge=1, le=3600)
    # Shard leases (ownership.py): a dead replica's shards are free after lease_ms and taken at the next renewal
    # step of a live one, so within shard_lease_ms + shard_interval_s (12 s by default).
    shard_lease_ms: int = Field(default=DEFAULT_LEASE_MS, validation_alias="EVALUATOR_SHARD_LEASE_MS", ge=500)
    shard_interval_s: float = Field(default=DEFAULT_INTERVAL_S, validation_alias="EVALUATOR_SHARD_INTERVAL_S", gt=0)

    @model_validator(mode="after")
    def _lease_outlasts_renewals(self) -> Self:
        if self.shard_interval_s * 1000 * 2 >= self.shard_lease_ms:
            raise ValueError("EVALUATOR_SHARD_LEASE_MS must outlast two EVALUATOR_SHARD_INTERVAL_S renewals")
        return self


@lru_cache
def get_settings() -> EvaluatorSettings:
    """The process's settings, read once."""
    return load_settings(EvaluatorSettings)
