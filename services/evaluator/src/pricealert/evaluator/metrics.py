"""Prometheus metrics of the evaluator (names prefixed pricealert_evaluator_), counted per batch."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TICKS = Counter("pricealert_evaluator_ticks_total", "Ticks evaluated against the index.")
TRIGGERS = Counter("pricealert_evaluator_triggers_total", "Triggers appended to the triggers stream.")
INDEX_CHANGES = Counter(
    "pricealert_evaluator_index_changes_total",
    "Alerts added to (created) or taken out of (deleted, expired) the index.",
    ["kind"],
)
BATCH_SECONDS = Histogram(
    "pricealert_evaluator_batch_duration_seconds",
    "Time to evaluate and acknowledge one batch of ticks.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
