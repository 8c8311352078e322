"""The Postgres scenarios' extra oracle: the creations a fault refused were 503 database_unavailable, Retry-After."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # chaos is a package at the repository root

from chaos.postgres_faults import POSTGRES_SCENARIOS
from chaos.runner import refusals
from chaos.workload import Created, PlannedAlert

UNAVAILABLE = '{"error": {"code": "database_unavailable", "message": "the database is unavailable"}}'


def created(n: int, status: int | None, error: str = "", retry_after: str | None = None) -> Created:
    """One creation the API answered `status`."""
    alert = PlannedAlert(f"a-{n}", 0, "BTCUSDT", "above", Decimal("70000"), "up")
    return Created(alert, status, alert_id=str(n) if status == 201 else None, error=error, retry_after=retry_after)


def test_only_a_503_database_unavailable_with_retry_after_is_a_proper_refusal() -> None:
    answers = [
        created(1, 201),
        created(2, 503, UNAVAILABLE, "1"),
        created(3, 503, UNAVAILABLE),  # no Retry-After
        created(4, 500, '{"error": {"code": "internal"}}'),
        created(5, None, "ReadTimeout: "),
        created(6, 503, '{"error": {"code": "upstream_unavailable"}}', "1"),
        created(7, 409, '{"error": {"code": "too_many_alerts"}}'),
    ]
    lenient, strict = refusals(answers, strict=False), refusals(answers, strict=True)
    assert lenient["refusals_503"] == strict["refusals_503"] == 1
    assert [r.split(":")[0] for r in lenient["refusals_wrong"]] == ["a-3", "a-4", "a-5", "a-6"]
    assert [r.split(":")[0] for r in strict["refusals_wrong"]] == ["a-3", "a-4", "a-5", "a-6", "a-7"]


def test_every_postgres_scenario_runs_on_postgres_under_creations_and_wants_proper_refusals() -> None:
    assert {s.name for s in POSTGRES_SCENARIOS} == {
        "pg-kill-9",
        "pg-down-30s",
        "pg-terminate-backends",
        "pg-lock-alerts",
    }
    for scenario in POSTGRES_SCENARIOS:
        assert (scenario.database, scenario.during, scenario.refusals_503) == ("postgres", "create", True)
        assert scenario.oracle
