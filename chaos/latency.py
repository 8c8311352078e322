"""Trade -> trigger and trade -> mail latencies of a scenario (p50/p99, ms), for trades during the fault and outside
it: how far a slow dependency degrades the pipeline."""

from __future__ import annotations

from typing import Any


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def _figures(prefix: str, values: list[float]) -> dict[str, Any]:
    p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
    return {
        f"{prefix}_n": len(values),
        f"{prefix}_p50_ms": None if p50 is None else round(p50),
        f"{prefix}_p99_ms": None if p99 is None else round(p99),
    }


def latency_figures(
    triggers: list[dict[str, str]], mails: list[tuple[float, str]], started_ms: float | None, ended_ms: float | None
) -> dict[str, Any]:
    """Trade (the exchange's time) -> trigger written, and -> its first mail accepted; `during` the fault (the
    trade's time within it) and `outside` it."""
    first_mail: dict[str, float] = {}
    for at, trigger_id in mails:
        first_mail.setdefault(trigger_id, at)
    rows: dict[str, list[float]] = {"during": [], "outside": [], "mail_during": [], "mail_outside": []}
    for trigger in triggers:
        try:
            traded = float(trigger["exchange_time"])
            written = float(trigger["entry_id"].split("-")[0])
        except (KeyError, ValueError):
            continue
        where = "during" if started_ms and ended_ms and started_ms <= traded <= ended_ms else "outside"
        rows[where].append(written - traded)
        if trigger["trigger_id"] in first_mail:
            rows[f"mail_{where}"].append(first_mail[trigger["trigger_id"]] - traded)
    figures: dict[str, Any] = {}
    for name, key in (("trigger", ""), ("mail", "mail_")):
        figures |= _figures(f"latency_{name}_during", rows[f"{key}during"])
        figures |= _figures(f"latency_{name}_outside", rows[f"{key}outside"])
    return figures


def latency_line(r: dict[str, Any]) -> str:
    """The report's line: p50/p99 during the fault against outside it."""

    def pair(kind: str, where: str) -> str:
        n = r.get(f"latency_{kind}_{where}_n", 0)
        return f"{r.get(f'latency_{kind}_{where}_p50_ms')}/{r.get(f'latency_{kind}_{where}_p99_ms')} ms (n={n})"

    return (
        f"  trade -> trigger p50/p99 during the fault {pair('trigger', 'during')}, outside "
        f"{pair('trigger', 'outside')}; trade -> mail during {pair('mail', 'during')}, outside "
        f"{pair('mail', 'outside')}."
    )
