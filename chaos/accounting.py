"""Jepsen-style accounting of a chaos run's oracle result, and of a scenario's N runs.

Each kind of operation has a count the system acknowledged (alerts answered 201) or owes (triggers the market makes
due, mails and webhook deliveries of the triggers written, recurring firings the script crosses). Of those: lost
(owed, never delivered), duplicated (delivered more than once), unexpected (delivered though never owed: a trigger of
an alert the API refused, a mail of no trigger), recovered (affected by the fault yet delivered in the end: pending
when the fault hit or still pending when it ended; an alert whose creation got no answer or a 5xx that fired). Each
also as a fraction of the acknowledged count.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

KINDS = ("alerts", "triggers", "recurring firings", "mails", "webhooks")
MEASURES = ("lost", "duplicated", "unexpected", "recovered")


def _n(value: Any) -> int:
    """A count, whether the oracle kept the items (a list) or only their number."""
    return len(value) if isinstance(value, list | set | tuple) else int(value or 0)


def held(spans: Iterable[tuple[float, float]], started_ms: float | None, ended_ms: float | None) -> int:
    """How many (began, done) spans the fault held: begun before its start and done after it, or begun before its
    end and done after it (pending when it hit, or still pending when it ended)."""
    edges = [edge for edge in (started_ms, ended_ms) if edge is not None]
    return sum(1 for began, done in spans if any(began < edge <= done for edge in edges))


def entry_ms(trigger: Mapping[str, str]) -> int:
    """When a trigger was written: its stream entry id's milliseconds."""
    return int(trigger["entry_id"].split("-")[0])


def trigger_spans(triggers: Sequence[Mapping[str, str]]) -> list[tuple[float, float]]:
    """(the trade that fired it, the trigger written) of every trigger with a readable exchange time."""
    spans = []
    for t in triggers:
        try:
            spans.append((float(t["exchange_time"]), float(entry_ms(t))))
        except (KeyError, ValueError):
            continue
    return spans


def delivery_spans(
    triggers: Sequence[Mapping[str, str]], delivered: Iterable[tuple[float, str]]
) -> list[tuple[float, float]]:
    """(the trigger written, its first delivery) of every delivered trigger; `delivered`: (epoch ms, trigger id)."""
    first: dict[str, float] = {}
    for at, trigger_id in delivered:
        first[trigger_id] = min(at, first.get(trigger_id, at))
    written = {t["trigger_id"]: float(entry_ms(t)) for t in triggers if "entry_id" in t}
    return [(written[tid], at) for tid, at in first.items() if tid in written]


def account(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Kind -> acknowledged, lost, duplicated, unexpected, recovered (counts) and their fractions, for one run's
    oracle result; {} for a run the oracle never judged. Duplicated is None where nothing can deliver twice."""
    if "triggers_lost" not in result:
        return {}
    r = result
    kinds: dict[str, dict[str, Any]] = {
        "alerts": _kind(
            r["alerts_acknowledged"],
            r["alerts_lost"],
            None,
            r.get("alerts_unexpected", []),
            r.get("alerts_recovered", []),
        ),
        "triggers": _kind(
            r["triggers_expected"],
            r["triggers_lost"],
            r["triggers_duplicated"],
            r["triggers_unexpected"],
            r.get("triggers_recovered", 0),
        ),
        "mails": _kind(
            r["emails_expected"],
            r["emails_lost"],
            r["emails_duplicated"],
            r["emails_unexpected"],
            r.get("emails_recovered", 0),
            window=r["mail_crash_window"],
        ),
    }
    if "recurring_firings_expected" in r:
        kinds["recurring firings"] = _kind(
            r["recurring_firings_expected"],
            r.get("recurring_firings_missing", 0),
            r.get("recurring_firings_doubled", 0),
            r.get("recurring_firings_extra", 0),
            r.get("recurring_firings_recovered", 0),
        )
    if "webhooks_expected" in r:
        kinds["webhooks"] = _kind(
            r["webhooks_expected"],
            r["webhooks_lost"],
            r["webhooks_duplicated"],
            r["webhooks_unexpected"],
            r.get("webhooks_recovered", 0),
            window=r["webhook_crash_window"],
        )
    return {kind: kinds[kind] for kind in KINDS if kind in kinds}


def _kind(
    acknowledged: Any, lost: Any, duplicated: Any, unexpected: Any, recovered: Any, window: Any = None
) -> dict[str, Any]:
    counts = {
        "acknowledged": _n(acknowledged),
        "lost": _n(lost),
        "duplicated": None if duplicated is None else _n(duplicated),
        "unexpected": _n(unexpected),
        "recovered": _n(recovered),
    }
    if window is not None:
        counts["window"] = _n(window)
    return counts | fractions(counts)


def fractions(counts: Mapping[str, Any]) -> dict[str, float | None]:
    """'<measure>_fraction': each measure over the acknowledged count (None with nothing acknowledged)."""
    total = counts["acknowledged"]
    return {f"{m}_fraction": (counts[m] / total if total and counts[m] is not None else None) for m in MEASURES}


def spread(values: Iterable[float | None]) -> dict[str, float | None]:
    """min, median and max of the values that were measured (None: not measured in that run)."""
    measured = sorted(v for v in values if v is not None)
    if not measured:
        return {"min": None, "median": None, "max": None, "measured": 0}
    return {
        "min": measured[0],
        "median": round(statistics.median(measured), 2),
        "max": measured[-1],
        "measured": len(measured),
    }


def aggregate(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A scenario's N runs: pass only if every run passed, each kind's totals and fractions over the runs,
    recovery and settling min/median/max, wall time."""
    per_run = [account(r) for r in runs]
    kinds: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        present = [a[kind] for a in per_run if kind in a]
        if not present:
            continue
        totals: dict[str, Any] = {"acknowledged": sum(p["acknowledged"] for p in present)}
        for m in MEASURES:
            values = [p[m] for p in present if p[m] is not None]
            totals[m] = sum(values) if values else None
        if any("window" in p for p in present):
            totals["window"] = sum(p.get("window", 0) for p in present)
        kinds[kind] = totals | fractions(totals)
    first = runs[0] if runs else {}
    return {
        "scenario": first.get("scenario", "?"),
        "what": first.get("what", ""),
        "oracle": first.get("oracle", ""),
        "runs": len(runs),
        "verdicts": [bool(r.get("pass")) for r in runs],
        "judged": sum(1 for a in per_run if a),
        "pass": bool(runs) and all(r.get("pass") for r in runs) and all(per_run),
        "accounting": kinds,
        "recovery_s": spread(r.get("recovery_s") for r in runs),
        "settled_s": spread(r.get("settled_s") for r in runs),
        "wall_s": round(sum(float(r.get("wall_s") or 0) for r in runs), 1),
    }


def recovery(
    triggers: list[dict[str, str]], mails: list[tuple[float, str]], fault_end_ms: float | None
) -> dict[str, float | None]:
    """Fault end -> the next trigger, the next email, and the last email (settled) among `triggers` and `mails`
    (judge gives the once alerts': the recurring alerts' swings at the end would make every scenario settle late)."""
    if fault_end_ms is None:
        return {"recovery_s": None, "next_trigger_s": None, "next_email_s": None, "settled_s": None}
    trigger_ms = sorted(entry_ms(t) for t in triggers)
    after_t = [ms for ms in trigger_ms if ms >= fault_end_ms]
    after_m = sorted(ms for ms, _ in mails if ms >= fault_end_ms)
    next_t = round((after_t[0] - fault_end_ms) / 1000, 2) if after_t else None
    next_m = round((after_m[0] - fault_end_ms) / 1000, 2) if after_m else None
    both = [v for v in (next_t, next_m) if v is not None]
    return {
        "recovery_s": max(both) if both else None,
        "next_trigger_s": next_t,
        "next_email_s": next_m,
        "settled_s": round((after_m[-1] - fault_end_ms) / 1000, 2) if after_m else None,
    }
