"""The chaos run's Jepsen-style accounting: one run's oracle result, a scenario's N runs, what chaos.md shows."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # chaos is a package at the repository root

from chaos.accounting import account, aggregate, delivery_spans, held, spread, trigger_spans
from chaos.oracle import Observation, judge
from chaos.recurring_oracle import Shown
from chaos.report import write_report
from chaos.report_summary import accounting_rows, overview_row
from chaos.run import rewrite_report
from chaos.webhook_receiver import Received
from chaos.webhooks import judge_webhooks
from chaos.workload import Created, PlannedAlert, User


def oracle_result(**changes: Any) -> dict[str, Any]:
    """A hand-made run as judge, judge_recurring and judge_webhooks leave it: 100 alerts answered 201, 80 triggers
    due, 90 mails owed (80 + 10 recurring firings), 10 recurring firings, 90 webhooks."""
    result: dict[str, Any] = {
        "scenario": "kill-notifier",
        "what": "SIGKILL the notifier",
        "pass": True,
        "alerts_attempted": 100,
        "alerts_acknowledged": 100,
        "triggers_seen": 80,
        "emails_accepted": 90,
        "dead_letters": 0,
        "alerts_lost": [],
        "alerts_unexpected": [],
        "alerts_recovered": [],
        "triggers_expected": 80,
        "triggers_lost": [],
        "triggers_duplicated": 0,
        "triggers_unexpected": [],
        "triggers_recovered": 0,
        "emails_expected": 90,
        "emails_lost": [],
        "emails_duplicated": 0,
        "emails_unexpected": [],
        "emails_recovered": 0,
        "mail_crash_window": 0,
        "recurring_firings_expected": 10,
        "recurring_firings_missing": 0,
        "recurring_firings_doubled": 0,
        "recurring_firings_extra": 0,
        "recurring_firings_recovered": 0,
        "recovery_s": 1.0,
        "settled_s": 2.0,
        "wall_s": 30.0,
    }
    return result | changes


def test_a_run_is_counted_per_kind_and_as_fractions_of_the_acknowledged() -> None:
    run = oracle_result(
        alerts_lost=["a"],
        alerts_unexpected=["refused-but-fired"],
        alerts_recovered=["no-answer-but-fired", "502-but-fired"],
        triggers_lost=["t1", "t2"],
        triggers_recovered=8,
        emails_duplicated=3,
        mail_crash_window=5,
        emails_recovered=9,
        emails_unexpected=["x"],
        recurring_firings_missing=1,
        recurring_firings_doubled=2,
    )
    acc = account(run)
    assert list(acc) == ["alerts", "triggers", "recurring firings", "mails"]
    alerts = acc["alerts"]
    assert (alerts["acknowledged"], alerts["lost"], alerts["unexpected"], alerts["recovered"]) == (100, 1, 1, 2)
    assert alerts["duplicated"] is None and alerts["duplicated_fraction"] is None  # an alert cannot arrive twice
    assert alerts["lost_fraction"] == 0.01 and alerts["recovered_fraction"] == 0.02
    assert acc["triggers"]["lost"] == 2 and acc["triggers"]["lost_fraction"] == 2 / 80
    assert acc["triggers"]["recovered_fraction"] == 0.1
    mails = acc["mails"]
    assert (mails["duplicated"], mails["window"], mails["recovered"], mails["unexpected"]) == (3, 5, 9, 1)
    assert mails["duplicated_fraction"] == 3 / 90
    recurring = acc["recurring firings"]
    assert (recurring["lost"], recurring["duplicated"], recurring["lost_fraction"]) == (1, 2, 0.1)


def test_webhooks_are_a_kind_of_their_own_when_the_scenario_has_them() -> None:
    run = oracle_result(
        webhooks_expected=90,
        webhooks_lost=["/hooks/user-1 x"],
        webhooks_duplicated=2,
        webhooks_unexpected=[],
        webhooks_recovered=4,
        webhook_crash_window=3,
    )
    hooks = account(run)["webhooks"]
    assert (hooks["lost"], hooks["duplicated"], hooks["window"], hooks["recovered"]) == (1, 2, 3, 4)
    assert hooks["lost_fraction"] == 1 / 90


def test_a_run_the_oracle_never_judged_has_no_accounting_and_nothing_acknowledged_no_fraction() -> None:
    assert account({"scenario": "kill-ingest", "pass": False, "error": "RuntimeError: no stack"}) == {}
    empty = account(oracle_result(alerts_acknowledged=0, alerts_lost=[]))["alerts"]
    assert empty["lost"] == 0 and empty["lost_fraction"] is None


def test_the_fault_holds_what_is_pending_across_its_start_or_its_end() -> None:
    spans = [
        (100.0, 150.0),  # done before the fault
        (150.0, 250.0),  # pending when it hit at 200
        (210.0, 290.0),  # begun and done within the fault
        (290.0, 310.0),  # still pending when it ended at 300
        (150.0, 400.0),  # across both edges: counted once
        (350.0, 360.0),  # after it
        (120.0, 200.0),  # done the moment it hit: pending then
    ]
    assert held(spans, 200.0, 300.0) == 4
    assert held(spans, 200.0, 200.0) == 3  # no fault (the baseline): what was in flight at that instant
    assert held(spans, None, None) == 0


def test_spans_from_triggers_and_deliveries() -> None:
    triggers = [
        {"trigger_id": "t1", "entry_id": "1000-0", "exchange_time": "990"},
        {"trigger_id": "t2", "entry_id": "2000-1", "exchange_time": "1500"},
        {"trigger_id": "t3", "entry_id": "3000-0"},  # no exchange time: not a span
    ]
    assert trigger_spans(triggers) == [(990.0, 1000.0), (1500.0, 2000.0)]
    mails = [(2600.0, "t2"), (1200.0, "t1"), (2500.0, "t2"), (9000.0, "nobody")]
    assert sorted(delivery_spans(triggers, mails)) == [(1000.0, 1200.0), (2000.0, 2500.0)]  # the first delivery


def test_a_scenario_passes_only_if_every_run_passes() -> None:
    good = [oracle_result(run=n) for n in (1, 2, 3)]
    assert aggregate(good)["pass"] is True
    assert aggregate(good)["verdicts"] == [True, True, True]
    one_bad = [*good[:2], oracle_result(run=3, **{"pass": False, "triggers_lost": ["t"]})]
    assert aggregate(one_bad)["pass"] is False and aggregate(one_bad)["verdicts"] == [True, True, False]
    crashed = [*good[:2], {"scenario": "kill-notifier", "run": 3, "pass": False, "error": "Timeout"}]
    summary = aggregate(crashed)
    assert summary["pass"] is False and summary["judged"] == 2
    assert summary["accounting"]["triggers"]["acknowledged"] == 160  # the judged runs only
    assert aggregate([])["pass"] is False


def test_a_scenario_sums_each_kind_over_its_runs_with_fractions_and_recovery_spread() -> None:
    runs = [
        oracle_result(run=1, emails_duplicated=2, mail_crash_window=4, recovery_s=3.0, wall_s=31.0),
        oracle_result(run=2, triggers_lost=["t"], emails_recovered=6, recovery_s=None, wall_s=29.5),
        oracle_result(run=3, emails_duplicated=1, mail_crash_window=1, recovery_s=1.5, settled_s=None, wall_s=30),
    ]
    summary = aggregate(runs)
    mails = summary["accounting"]["mails"]
    assert (mails["acknowledged"], mails["duplicated"], mails["window"], mails["recovered"]) == (270, 3, 5, 6)
    assert mails["duplicated_fraction"] == 3 / 270
    triggers = summary["accounting"]["triggers"]
    assert (triggers["acknowledged"], triggers["lost"], triggers["lost_fraction"]) == (240, 1, 1 / 240)
    assert summary["accounting"]["alerts"]["duplicated"] is None
    assert summary["recovery_s"] == {"min": 1.5, "median": 2.25, "max": 3.0, "measured": 2}
    assert summary["settled_s"]["measured"] == 2
    assert summary["wall_s"] == 90.5
    assert spread([None, None]) == {"min": None, "median": None, "max": None, "measured": 0}


def test_chaos_md_shows_verdicts_fractions_recovery_and_chaos_json_every_run(tmp_path: Path) -> None:
    runs = [
        oracle_result(run=1, emails_duplicated=2, mail_crash_window=4, recovery_s=3.0),
        oracle_result(run=2, recovery_s=1.0),
        oracle_result(run=3, **{"pass": False, "triggers_lost": ["t1"], "recovery_s": 2.0}),
    ]
    summary = aggregate(runs) | {"results": runs}
    row = overview_row(summary)
    assert "| kill-notifier | **FAIL**: pass pass FAIL | 1 (0.119 %) | 2 (0.238 %) | 2 (4) | 0 | 0 |" in row
    assert row.endswith("| 1 / 2 / 3 | 90 |")
    assert "| kill-notifier | triggers | 240 | 1 (0.417 %) | 0 | 0 | 0 |" in accounting_rows(summary)
    assert "| kill-notifier | alerts | 300 | 0 | — | 0 | 0 |" in accounting_rows(summary)
    write_report([summary], [], tmp_path, 91.0)
    md = (tmp_path / "chaos.md").read_text()
    assert "0/1 fault scenarios pass in every one of their runs (3 each)" in md
    assert "| kill-notifier #3 | 1 |" in md
    data = json.loads((tmp_path / "chaos.json").read_text())
    assert [r["run"] for r in data["scenarios"][0]["results"]] == [1, 2, 3]


def test_the_oracle_counts_a_refused_alert_that_fired_unexpected_and_an_unanswered_one_recovered() -> None:
    def alert(name: str) -> PlannedAlert:
        return PlannedAlert(name, 0, "BTCUSDT", "above", Decimal("65065.00"), "up")

    created = [
        Created(alert("ok"), 201, alert_id="id-ok"),
        Created(alert("refused"), 422, error="invalid"),
        Created(alert("unanswered"), None, error="ReadTimeout"),
        Created(alert("bad-gateway"), 502, error="upstream"),
    ]
    fired = (("ok", 995, 1000), ("refused", 1095, 1100), ("unanswered", 1195, 1200), ("bad-gateway", 1295, 1299))
    triggers = [
        {"name": n, "alert_id": f"id-{n}", "trigger_id": f"tr-{n}", "price": "65070", "entry_id": f"{written}-0"}
        | {"exchange_time": str(traded), "shard": "0"}
        for n, traded, written in fired
    ]
    mails = [(1010.0, "tr-ok"), (1110.0, "tr-refused"), (1250.0, "tr-unanswered"), (1400.0, "tr-bad-gateway")]
    shown: dict[str, Shown] = {"id-ok": ("triggered", "sent", None)}
    obs = Observation(triggers, mails, {"id-ok"}, {}, shown)
    result = judge(created, obs, mail_window=0, fault_end_ms=1300.0, fault_start_ms=1198.0)
    assert result["alerts_unexpected"] == ["refused"]
    assert result["alerts_recovered"] == ["bad-gateway", "unanswered"]
    assert result["triggers_recovered"] == 1  # traded at 1195, written after the fault hit at 1198
    assert result["emails_recovered"] == 1  # bad-gateway's, written at 1299 and mailed after the fault ended
    assert result["pass"] is False  # an alert the API refused must never fire
    acc = account(result)["alerts"]
    assert (acc["acknowledged"], acc["unexpected"], acc["recovered"]) == (1, 1, 2)
    no_fault = judge(created, obs, mail_window=0, fault_end_ms=1300.0)  # the baseline: no fault held anything
    assert (no_fault["triggers_recovered"], no_fault["emails_recovered"], len(no_fault["alerts_recovered"])) == (
        0,
        0,
        2,
    )


def test_the_webhooks_the_fault_held_are_recovered() -> None:
    people = [User(f"u{k}@example.com", {}, ["email", f"ch{k}"], f"/hooks/user-{k}") for k in range(2)]
    triggers = [
        {"trigger_id": f"a{n}", "email": people[n % 2].email, "entry_id": f"{written}-0"}
        for n, written in enumerate((500, 900, 1500, 1900))
    ]
    received = [
        Received(at, f"a{n}", people[n % 2].hook, True, "alert.fired")
        for n, at in ((0, 600.0), (1, 1100.0), (2, 1600.0), (3, 2500.0), (3, 2600.0))
    ]
    received.append(Received(1200.0, "a0", "/hooks/user-1", True, "alert.fired"))  # at another user's endpoint
    result = judge_webhooks(triggers, people, received, window=1, fault=(1000.0, 2000.0))
    assert result["webhooks_recovered"] == 2  # a1 pending when the fault hit, a3 still pending when it ended
    hooks = account(oracle_result(**result))["webhooks"]
    assert (hooks["acknowledged"], hooks["recovered"], hooks["duplicated"], hooks["unexpected"]) == (4, 2, 1, 1)


def test_chaos_md_is_written_again_from_chaos_json_with_the_postfix_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusals = {
        "refused_expected": 51,
        "refused_results_wrong": [],
        "refused_results_wrong_count": 0,
        "refused_mailed": [],
        "refused_history_wrong": [],
    }
    runs = [oracle_result(run=1, scenario="postfix-reject-5xx", **refusals)]
    write_report([aggregate(runs) | {"results": runs}], [], tmp_path, 42.0)
    first = (tmp_path / "chaos.md").read_text()
    assert "mails Postfix rejects: 51 firings" in first
    assert "0 results otherwise, 0 mailed, 0 shown otherwise by the API" in first
    (tmp_path / "chaos.md").write_text("stale")
    monkeypatch.setattr("chaos.run.RESULTS", tmp_path)
    rewrite_report()
    assert (tmp_path / "chaos.md").read_text() == first
