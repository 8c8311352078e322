"""The chaos run's recurring workload: its levels, the firings its script makes, and its oracle's accounting."""

from __future__ import annotations

import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # chaos is a package at the repository root

from chaos.oracle import trigger_id_of
from chaos.recurring import (
    COOLDOWN_S,
    FIRST_HOLD_S,
    HOLD_S,
    STEP_S,
    SWING,
    SWINGS,
    expected_firings,
    plan_recurring,
    plan_workload,
)
from chaos.recurring_oracle import judge_recurring
from chaos.workload import LEVELS, SYMBOLS, Created, Market, PlannedAlert, fires_at, plan_alerts

USERS = 12


def script() -> list[tuple[int, int]]:
    """(ms, level) of every level change of a scenario, each phase as short as the runner may make it."""
    steps: list[tuple[float, int]] = [(1.0, 0), *((0.2, lv) for lv in range(1, 9)), (0.2, 24)]
    steps += [(0.2, lv) for lv in range(25, LEVELS + 1)]
    steps += [(0.05, lv) for lv in range(LEVELS - 1, -LEVELS - 1, -1)]
    steps[-1] = (FIRST_HOLD_S, -LEVELS)  # the down check may hold no time at all
    for _ in range(SWINGS):
        steps += [(HOLD_S if lv in (-41, -LEVELS) else STEP_S, lv) for lv in SWING]
    out, ms = [], 0.0
    for pause, level in steps:
        out.append((int(ms), level))
        ms += pause * 1000
    return out


def reference_firings(alert: PlannedAlert, trades: list[tuple[int, Decimal]]) -> int:
    """docs/conditions.md for an every_time level or range alert: its firings on `trades` (no price at a bound)."""
    fired, cool_until = 0, -1
    previous: bool | None = None  # the side the price was on (above/inside: True)
    for ms, price in trades:
        if alert.condition in ("enter_range", "exit_range"):
            assert alert.low is not None and alert.high is not None
            side = alert.low <= price <= alert.high
            crossing = previous is not None and side != previous and side == (alert.condition == "enter_range")
        else:
            assert alert.target is not None and price != alert.target
            side = price > alert.target
            if alert.condition == "cross":
                crossing = previous is not None and side != previous
            else:  # above / below: the first trade on the firing side fires, then one per return to it
                crossing = side == (alert.condition == "above") and previous in (None, not side)
        if crossing and ms >= cool_until:
            fired, cool_until = fired + 1, ms + COOLDOWN_S * 1000
        previous = side
    return fired


@pytest.mark.parametrize("alert", plan_recurring(USERS), ids=lambda a: a.name)
def test_the_script_fires_each_recurring_alert_as_often_as_expected(alert: PlannedAlert) -> None:
    trades = [(ms, Market.price(alert.symbol, level)) for ms, level in script()]
    assert reference_firings(alert, trades) == expected_firings(alert.condition)


def test_recurring_levels_lie_between_market_levels_and_leave_the_once_alerts_alone() -> None:
    for alert in plan_recurring(USERS):
        prices = {level: Market.price(alert.symbol, level) for level in range(-LEVELS, -40)}
        bounds = [b for b in (alert.target, alert.low, alert.high) if b is not None]
        assert bounds and all(b not in prices.values() for b in bounds)
        if alert.target is not None:
            assert prices[-43] < alert.target < prices[-42]
        else:
            assert prices[-44] < (alert.low or 0) < prices[-43] and prices[-42] < (alert.high or 0) < prices[-41]
    for once in plan_alerts(USERS):  # where the swings go, every once alert is fired (or out of reach) already
        assert len({fires_at(once, Market.price(once.symbol, level)) for level in range(-LEVELS, -40)}) == 1


def test_the_plan_holds_both_kinds_everywhere() -> None:
    plan = plan_workload(USERS)
    assert len(plan) == len(plan_alerts(USERS)) + len(SYMBOLS) * 5 == len({a.name for a in plan})
    half = len(plan) // 2
    assert any(a.recurring for a in plan[:half]) and any(a.recurring for a in plan[half:])
    body = next(a for a in plan if a.condition == "enter_range").body()
    assert body["frequency"] == "every_time" and body["cooldown_s"] == COOLDOWN_S
    assert "target_price" not in body and Decimal(str(body["low"])) < Decimal(str(body["high"]))


def test_a_recurring_mail_names_its_firing() -> None:
    alert_id = "3f0c9a52-8d1e-4c7b-9b6a-2f1e0d4c5b7a"
    assert trigger_id_of(f"<trigger.{alert_id}.12@example.com>") == f"{alert_id}:12"
    assert trigger_id_of(f"<trigger.{alert_id}@example.com>") == alert_id


def run(alerts: list[PlannedAlert]) -> tuple[list[Created], list[dict[str, str]], dict[str, Any]]:
    """A flawless synthetic run: each alert fires as scripted, its mails accepted once, the API agrees."""
    created, triggers, shown, history = [], [], {}, {}
    for i, alert in enumerate(alerts):
        alert_id = f"00000000-0000-0000-0000-{i:012d}"
        created.append(Created(alert, 201, alert_id=alert_id))
        n = expected_firings(alert.condition)
        for k in range(1, n + 1):
            below = alert.condition in ("below",) or (alert.condition == "cross" and k % 2 == 1)
            if alert.condition in ("enter_range", "exit_range"):
                assert alert.low is not None and alert.high is not None
                price = (alert.low + alert.high) / 2 if alert.condition == "enter_range" else alert.low - 1
            else:
                assert alert.target is not None
                price = alert.target - 1 if below else alert.target + 1
            triggers.append(
                {
                    "alert_id": alert_id,
                    "name": alert.name,
                    "trigger_id": f"{alert_id}:{k}",
                    "firing": str(k),
                    "price": str(price),
                    "exchange_time": str(1_000_000 + 2000 * k),
                }
            )
        shown[alert_id] = ("active", "sent", n)
        history[alert_id] = [{"id": f"{alert_id}:{k}", "firing": k, "delivery_status": "sent"} for k in range(n, 0, -1)]
    return created, triggers, {"shown": shown, "history": history}


def judged(created: list[Created], triggers: list[dict[str, str]], api: dict[str, Any], **change: Any) -> Any:
    mails = change.pop("mails", Counter(t["trigger_id"] for t in triggers))
    indexed = change.pop("indexed", {c.alert_id for c in created})
    return judge_recurring(created, triggers, mails, api["shown"], api["history"], indexed)


def test_a_flawless_run_passes() -> None:
    created, triggers, api = run(plan_recurring(USERS))
    result = judged(created, triggers, api)
    assert result["recurring_pass"], result
    assert result["recurring_firings_seen"] == result["recurring_firings_expected"] == len(triggers) == 116
    assert result["recurring_emails_accepted"] == 116 and result["recurring_emails_duplicated"] == 0


def test_a_lost_firing_a_doubled_one_and_a_gap_are_counted() -> None:
    created, triggers, api = run(plan_recurring(USERS)[:3])
    lost_alert = created[0].alert_id
    triggers = [t for t in triggers if t["alert_id"] != lost_alert]
    api["history"][lost_alert], api["shown"][lost_alert] = [], ("active", "None", 0)
    triggers.append(dict(triggers[0]))  # the same firing number twice
    gap = next(t for t in triggers if t["alert_id"] == created[2].alert_id and t["firing"] == "2")
    triggers.remove(gap)
    result = judged(created, triggers, api)
    assert result["recurring_lost"] == [created[0].alert.name]
    assert result["recurring_doubled"] == [f"{created[1].alert_id}:1 x2"]
    assert len(result["recurring_gaps"]) == 1 and created[2].alert.name in result["recurring_gaps"][0]
    assert len(result["recurring_count_off"]) == 2  # the lost alert and the one with a gap
    assert result["recurring_history_wrong"] and not result["recurring_pass"]


def test_mails_the_api_and_the_index_are_checked() -> None:
    created, triggers, api = run(plan_recurring(USERS)[:2])
    first, second = created[0].alert_id or "", created[1].alert_id or ""
    mails = Counter(t["trigger_id"] for t in triggers)
    mails[f"{first}:1"] = 0
    mails[f"{second}:2"] = 3
    api["shown"][second] = ("active", "sent", 1)
    result = judged(created, triggers, api, mails=mails, indexed={second})
    assert result["recurring_emails_lost"] == [f"{first}:1"]
    assert result["recurring_emails_duplicated"] == 2
    assert result["recurring_api_wrong_count"] == 1
    assert result["recurring_unindexed"] == [created[0].alert.name]
    assert not result["recurring_pass"]


def test_a_firing_at_a_price_that_cannot_fire_it_or_within_the_cooldown_is_invalid() -> None:
    alerts = [a for a in plan_recurring(USERS) if a.condition == "cross"][:1]
    created, triggers, api = run(alerts)
    triggers[1]["price"] = triggers[0]["price"]  # the second crossing must go back up
    triggers[2]["exchange_time"] = str(int(triggers[1]["exchange_time"]) + 999)
    result = judged(created, triggers, api)
    assert result["recurring_invalid_count"] == 2 and not result["recurring_pass"]


def test_an_alert_created_without_a_201_is_counted_recovered_and_still_checked_for_doubles() -> None:
    created, triggers, api = run(plan_recurring(USERS)[:2])
    created[1] = Created(created[1].alert, 503, error="upstream_unavailable")
    unanswered = [t for t in triggers if t["name"] == created[1].alert.name]
    result = judged(created, triggers, api)
    assert result["recurring_recovered"] == 1 and result["recurring_alerts"] == 1 and result["recurring_pass"]
    triggers.append(dict(unanswered[-1]))
    result = judged(created, triggers, api)
    assert len(result["recurring_doubled"]) == 1 and not result["recurring_pass"]
