"""Evaluator settings."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from pricealert.common.settings import ServiceSettings, load_settings


class EvaluatorSettings(ServiceSettings):
    """What the evaluator reads from the environment."""

    tick_batch_size: int = Field(default=2000, validation_alias="EVALUATOR_TICK_BATCH_SIZE", ge=1, le=4_000)
    reclaim_idle_ms: int = Field(default=10_000, validation_alias="EVALUATOR_RECLAIM_IDLE_MS", ge=100)
    max_deliveries: int = Field(default=5, validation_alias="EVALUATOR_MAX_DELIVERIES", ge=1)


@lru_cache
def get_settings() -> EvaluatorSettings:
    """The process's settings, read once."""
    return load_settings(EvaluatorSettings)
