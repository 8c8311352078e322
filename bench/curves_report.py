"""The cost curves (curves.py's JSON) as Markdown tables for bench.md and one PNG plot each in bench/results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PLOTS = ("curve_alerts.png", "curve_rates.png", "curve_rest.png")


def _ms(latency: dict[str, float] | None, key: str) -> str:
    return "—" if not latency else f"{latency[key]:g}"


def _count(n: int) -> str:
    return f"{n / 1e6:g} M" if n >= 1_000_000 else f"{n / 1e3:g} k" if n >= 1000 else str(n)


def alerts_table(curves: dict[str, Any]) -> list[str]:
    lines = [
        "| alerts | load (s, added) | ticks/s | tick → trigger p50 / p99 ms (2 000 ticks/s) | Redis MiB | process MiB "
        "| bytes per alert |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in curves.get("alerts_curve") or []:
        lat = p["latency_ms"]
        lines.append(
            f"| {_count(p['alerts'])} | {p['load_seconds_added']:g} | {p['throughput_ticks_per_s']} | "
            f"{_ms(lat, 'p50')} / {_ms(lat, 'p99')} | {p['redis_bytes'] / 2**20:.1f} | "
            f"{p['process_bytes'] / 2**20:.1f} | {p['bytes_per_alert']:g} |"
        )
    return lines


def rates_table(curves: dict[str, Any]) -> list[str]:
    ticks = {p["offered_rate"]: p for p in (curves.get("rates_curve") or {}).get("points") or []}
    mails = {p["offered_rate"]: p for p in (curves.get("e2e_curve") or {}).get("points") or []}
    lines = [
        "| ticks/s offered | tick → trigger p50 / p99 ms (achieved /s) | trade → mail p50 / p99 ms (achieved /s) "
        "| saturated |",
        "|---|---|---|---|",
    ]
    for rate in sorted(set(ticks) | set(mails)):
        t, m = ticks.get(rate), mails.get(rate)
        tick = f"{_ms(t['latency_ms'], 'p50')} / {_ms(t['latency_ms'], 'p99')} ({t['achieved_rate']})" if t else "—"
        mail = f"{_ms(m['latency_ms'], 'p50')} / {_ms(m['latency_ms'], 'p99')} ({m['achieved_rate']})" if m else "—"
        why = [f"tick → trigger: {t['saturated']}"] if t and t["saturated"] else []
        why += [f"trade → mail: {m['saturated']}"] if m and m["saturated"] else []
        lines.append(f"| {rate} | {tick} | {mail} | {'; '.join(why) or 'no'} |")
    return lines


def rest_table(curves: dict[str, Any]) -> list[str]:
    rest = curves.get("rest_curve") or {}
    lines = ["| req/s offered | answered /s | p50 / p99 / max ms | errors | saturated |", "|---|---|---|---|---|"]
    for p in rest.get("points") or []:
        lines.append(
            f"| {p['offered_per_s']:g} | {p['answered_per_s']} | {p['p50_ms']:g} / {p['p99_ms']:g} / {p['max_ms']:g} "
            f"| {p['errors']} | {p['saturated'] or 'no'} |"
        )
    return lines


def section(curves: dict[str, Any] | None) -> list[str]:
    """bench.md's "How cost grows" section ([] when the curves did not run): a table and a plot per curve measured."""
    if not curves or "error" in curves:
        return [f"How cost grows: not measured ({curves['error']}).", ""] if curves else []
    rates, e2e, rest = (curves.get(k) or {} for k in ("rates_curve", "e2e_curve", "rest_curve"))
    skipped = [what for what, part in (("trade → mail", e2e), ("REST", rest)) if not part]
    note = f"{' and '.join(skipped)} not run" if skipped else ""
    if curves["quick"]:
        note = f" **Quick run: loads scaled down, 10 M not run{', ' + note if note else ''}.**"
    elif note:
        note = f" {note[0].upper()}{note[1:]}."
    lines = [
        "## How cost grows",
        "",
        f"Shorter points than the rows above ({curves['seconds_per_point']:g} s each, one run): indicative, and only "
        f"as steady as the machine was quiet.{note}",
        "",
    ]
    if curves.get("alerts_curve"):
        lines += [*alerts_table(curves), "", f"![{PLOTS[0]}]({PLOTS[0]})", ""]
    if rates.get("points") or e2e.get("points"):
        lines += [
            "Tick rate: "
            + "; ".join(
                f"{what} with {_count(part['alerts'])} alerts"
                for what, part in (
                    ("tick → trigger (it stops once the evaluator saturates)", rates),
                    ("trade → mail", e2e),
                )
                if part.get("points")
            )
            + ".",
            "",
            *rates_table(curves),
            "",
            f"![{PLOTS[1]}]({PLOTS[1]})",
            "",
        ]
    if rest.get("points"):
        lines += [
            f"REST create + list, paced, against offered load (capacity under wrk "
            f"{rest.get('capacity_requests_per_s')} req/s):",
            "",
            *rest_table(curves),
            "",
            f"![{PLOTS[2]}]({PLOTS[2]})",
            "",
        ]
    return lines


def write_plots(curves: dict[str, Any], folder: Path) -> None:
    """curve_alerts.png, curve_rates.png, curve_rest.png (a plot with no points is left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alerts = curves.get("alerts_curve") or []
    if alerts:
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        counts = [p["alerts"] for p in alerts]
        left.plot(counts, [p["throughput_ticks_per_s"] for p in alerts], "o-", label="ticks/s")
        left.set_xscale("log")
        left.set_xlabel("alerts")
        left.set_ylabel("ticks/s")
        twin = left.twinx()
        twin.plot(counts, [(p["latency_ms"] or {}).get("p99", 0) for p in alerts], "s--", color="#d83b3b")
        twin.set_ylabel("tick → trigger p99 ms (red)")
        right.plot(counts, [p["bytes_per_alert"] for p in alerts], "o-", label="Redis + process")
        right.plot(counts, [p["redis_bytes_per_alert"] for p in alerts], "s--", label="Redis")
        right.axhline(250, color="#d83b3b", linestyle=":", label="goal 250 B")
        right.set(xscale="log", yscale="log", xlabel="alerts", ylabel="bytes per alert")
        right.legend()
        _save(plt, figure, folder / PLOTS[0], "evaluator as alerts grow")
    ticks = (curves.get("rates_curve") or {}).get("points") or []
    mails = (curves.get("e2e_curve") or {}).get("points") or []
    if ticks or mails:
        figure, axes = plt.subplots(figsize=(7, 4))
        for label, points in (("tick → trigger", ticks), ("trade → mail", mails)):
            shown = [p for p in points if p["latency_ms"]]
            for q, style in (("p50", "o-"), ("p99", "s--")):
                axes.plot(
                    [p["offered_rate"] for p in shown], [p["latency_ms"][q] for p in shown], style, label=f"{label} {q}"
                )
            saturated = [p for p in shown if p.get("saturated")]
            axes.plot([p["offered_rate"] for p in saturated], [p["latency_ms"]["p99"] for p in saturated], "kx", ms=12)
        axes.set(xlabel="ticks/s offered (x: saturated, see the table)", ylabel="ms", yscale="log")
        axes.legend()
        _save(plt, figure, folder / PLOTS[1], "latency as the tick rate grows")
    rest = (curves.get("rest_curve") or {}).get("points") or []
    if rest:
        figure, axes = plt.subplots(figsize=(7, 4))
        for q, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
            axes.plot([p["offered_per_s"] for p in rest], [p[q] for p in rest], style, label=q.removesuffix("_ms"))
        saturated = [p for p in rest if p.get("saturated")]
        axes.plot(
            [p["offered_per_s"] for p in saturated], [p["p99_ms"] for p in saturated], "kx", ms=12, label="saturated"
        )
        axes.set(xlabel="req/s offered (paced)", ylabel="ms", yscale="log")
        axes.legend()
        _save(plt, figure, folder / PLOTS[2], "REST create + list against offered load")


def _save(plt: Any, figure: Any, path: Path, title: str) -> None:
    figure.suptitle(f"pricealert: {title}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
