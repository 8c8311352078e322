"""The oracle of the recurring workload: each every_time alert's firings in the triggers streams, its mails, the API.

Nothing lost: every acknowledged alert fired, as often as the script crossed it (chaos/recurring.py). Nothing
doubled: no firing number twice in the triggers streams, and they run 1..n without a gap. Each firing valid: its
trigger id `<alert id>:<n>`, a price that may fire it, the cooldown since the previous one kept. Each firing's mail
accepted once (duplicates count against the scenario's crash window, with the once alerts' mails). The API shows
firing_count n, status active, the latest mail sent, and a history of exactly those n firings, all sent.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from chaos.recurring import expected_firings, valid_price
from chaos.workload import Created, PlannedAlert, User

# What the API shows of an alert: (status, delivery_status, firing_count).
Shown = tuple[str, str, int | None]
History = list[dict[str, Any]] | str  # the firings of GET /alerts/{id}/firings, newest first; or what went wrong


async def firing_history(client: httpx.AsyncClient, users: list[User], created: list[Created]) -> dict[str, History]:
    """Alert id -> its firings as GET /alerts/{id}/firings pages them, for every acknowledged recurring alert."""
    out: dict[str, History] = {}
    for c in created:
        if not (c.acknowledged and c.alert.recurring and c.alert_id):
            continue
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            try:
                response = await client.get(
                    f"/alerts/{c.alert_id}/firings",
                    params={"page": page, "page_size": 100},
                    headers=users[c.alert.user].headers,
                )
            except httpx.HTTPError as exc:
                items, error = [], f"{type(exc).__name__}: {exc}"[:200]
                break
            if response.status_code != 200:
                error = f"{time.strftime('%H:%M:%S')} {response.status_code} {response.text[:160]}"
                break
            body = response.json()
            items.extend(body["items"])
            error = ""
            if not body.get("next") or page >= 20:
                break
            page += 1
        out[c.alert_id] = error or items
    return out


def firings_of(created: list[Created], triggers: Sequence[Mapping[str, str]]) -> dict[str, tuple[int, int]]:
    """Acknowledged recurring alert id -> (distinct firing numbers in the triggers streams, firings expected)."""
    seen: dict[str, set[int | None]] = defaultdict(set)
    for t in triggers:
        seen[t.get("alert_id", "")].add(_firing_no(t))
    return {
        c.alert_id: (len(seen.get(c.alert_id, ())), expected_firings(c.alert.condition))
        for c in created
        if c.acknowledged and c.alert.recurring and c.alert_id
    }


def settled_recurring(
    created: list[Created], triggers: Sequence[Mapping[str, str]], shown: Mapping[str, Shown]
) -> bool:
    """Whether the API shows every acknowledged recurring alert's firings counted and its latest mail sent."""
    for alert_id, (have, _) in firings_of(created, triggers).items():
        got = shown.get(alert_id)
        if have and (got is None or got[1] != "sent" or got[2] != have):
            return False
    return True


def _firing_no(trigger: Mapping[str, str]) -> int | None:
    try:
        return int(trigger["firing"])
    except (KeyError, ValueError):
        return None


def _invalid(alert: PlannedAlert, alert_id: str, firings: list[Mapping[str, str]]) -> list[str]:
    """What is wrong with the alert's firings one by one (ordered by number): id, price, cooldown."""
    wrong = []
    previous_ms: int | None = None
    for t in firings:
        n = _firing_no(t)
        try:
            price, at_ms = Decimal(t["price"]), int(t["exchange_time"])
        except (KeyError, InvalidOperation, ValueError):
            wrong.append(f"{alert.name} #{n}: unreadable {dict(t)}"[:200])
            continue
        if t.get("trigger_id") != f"{alert_id}:{n}":
            wrong.append(f"{alert.name} #{n}: trigger id {t.get('trigger_id')}")
        if n is None or not valid_price(alert, price, n):
            wrong.append(f"{alert.name} #{n}: price {price} cannot fire it")
        if previous_ms is not None and alert.cooldown_s and at_ms - previous_ms < alert.cooldown_s * 1000:
            wrong.append(f"{alert.name} #{n}: {at_ms - previous_ms} ms after the previous firing (cooldown)")
        previous_ms = at_ms
    return wrong


def _history_wrong(name: str, history: History | None, trigger_ids: set[str]) -> str:
    """'' if the API's history is exactly these firings, each with its mail sent."""
    if history is None:
        return f"{name}: no history read"
    if isinstance(history, str):
        return f"{name}: {history}"
    ids = [str(f.get("id")) for f in history]
    if sorted(ids) != sorted(trigger_ids):
        return f"{name}: history {len(ids)} firings {sorted(set(ids) ^ trigger_ids)[:4]} differ from the streams'"
    numbers = [f.get("firing") for f in history]
    if numbers != sorted(numbers, key=lambda v: -(v or 0)):
        return f"{name}: history not newest first: {numbers}"
    unsent = [f"{f.get('firing')}={f.get('delivery_status')}" for f in history if f.get("delivery_status") != "sent"]
    return f"{name}: delivery {unsent[:5]}" if unsent else ""


def judge_recurring(
    created: list[Created],
    triggers: Sequence[Mapping[str, str]],
    mails: Counter[str],
    shown: Mapping[str, Shown],
    history: Mapping[str, History],
    indexed: set[str],
) -> dict[str, Any]:
    """Count what was lost, doubled and wrong of the recurring alerts' firings; their part of the verdict."""
    by_alert: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    for t in triggers:
        by_alert[t.get("alert_id", "")].append(t)
    acknowledged = [c for c in created if c.acknowledged and c.alert.recurring]
    numbers_seen = Counter((t.get("alert_id", ""), _firing_no(t)) for t in triggers)
    doubled = sorted(f"{a}:{n} x{k}" for (a, n), k in numbers_seen.items() if k > 1)
    lost, gaps, count_off, invalid, api_wrong, history_wrong, unindexed = [], [], [], [], [], [], []
    missing = extra = 0
    for c in acknowledged:
        alert, alert_id = c.alert, c.alert_id or ""
        firings = sorted(by_alert.get(alert_id, []), key=lambda t: _firing_no(t) or 0)
        numbers = sorted({n for t in firings if (n := _firing_no(t)) is not None})
        if not numbers:
            lost.append(alert.name)
        elif numbers != list(range(1, numbers[-1] + 1)):
            gaps.append(f"{alert.name}: {numbers}")
        n, want = len(numbers), expected_firings(alert.condition)
        missing, extra = missing + max(0, want - n), extra + max(0, n - want)
        if n != want:
            count_off.append(f"{alert.name}: fired {n} times, the script crosses it {want} times")
        invalid.extend(_invalid(alert, alert_id, firings))
        got = shown.get(alert_id)
        if got is None or got[0] != "active" or (n and got[1] != "sent") or got[2] != n:
            api_wrong.append(f"{alert.name}: {got} (expected ('active', 'sent', {n}))")
        if problem := _history_wrong(alert.name, history.get(alert_id), {t["trigger_id"] for t in firings}):
            history_wrong.append(problem)
        if alert_id not in indexed:
            unindexed.append(alert.name)
    trigger_ids = {t.get("trigger_id", "") for t in triggers}
    acknowledged_ids = {c.alert_id for c in acknowledged}
    result: dict[str, Any] = {
        "recurring_alerts": len(acknowledged),
        "recurring_firings_expected": sum(expected_firings(c.alert.condition) for c in acknowledged),
        "recurring_firings_seen": len(numbers_seen),
        "recurring_recovered": len({t.get("alert_id") for t in triggers} - acknowledged_ids),
        "recurring_lost": lost,
        "recurring_gaps": gaps,
        "recurring_doubled": doubled,
        "recurring_firings_missing": missing,  # scripted firings that never came, summed over the alerts
        "recurring_firings_extra": extra,  # firings beyond the script's
        "recurring_firings_doubled": sum(k - 1 for k in numbers_seen.values() if k > 1),
        "recurring_count_off": count_off,
        "recurring_invalid": invalid[:20],
        "recurring_invalid_count": len(invalid),
        "recurring_emails_expected": len(trigger_ids),
        "recurring_emails_accepted": sum(mails[t] for t in trigger_ids),
        "recurring_emails_lost": sorted(t for t in trigger_ids if not mails[t]),
        "recurring_emails_duplicated": sum(mails[t] - 1 for t in trigger_ids if mails[t] > 1),
        "recurring_api_wrong": api_wrong[:20],
        "recurring_api_wrong_count": len(api_wrong),
        "recurring_history_wrong": history_wrong[:20],
        "recurring_unindexed": unindexed,
    }
    result["recurring_pass"] = not any(
        result[k]
        for k in (
            "recurring_lost",
            "recurring_gaps",
            "recurring_doubled",
            "recurring_count_off",
            "recurring_invalid_count",
            "recurring_emails_lost",
            "recurring_api_wrong_count",
            "recurring_history_wrong",
            "recurring_unindexed",
        )
    )
    return result
