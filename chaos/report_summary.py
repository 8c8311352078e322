"""chaos.md's summary of each scenario over its N runs: verdicts, the Jepsen-style accounting, recovery, wall time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chaos.accounting import KINDS, MEASURES

COMMON_ORACLE = (
    "every alert answered 201 evaluated, every due trigger written once and its mail accepted (duplicates within "
    "the crash window), each recurring alert fired exactly as the market crossed it, every status right, no "
    "process crashed"
)
WEBHOOK_ORACLE = "every firing's webhook at its user's endpoint once, signature verified (duplicates within its window)"

OVERVIEW_HEADER = (
    "| scenario | verdicts | lost | duplicated | mail duplicates (window) | unexpected | recovered "
    "| recovery s min / median / max | wall s |\n|---|---|---|---|---|---|---|---|---|"
)
ACCOUNTING_HEADER = (
    "| scenario | operations | acknowledged | lost | duplicated | unexpected | recovered |\n"
    "|---|---|---|---|---|---|---|"
)


def share(count: int | None, fraction: float | None) -> str:
    """'n (x %)' of a measure; '0' for none, '—' where it is not measured."""
    if count is None:
        return "—"
    if not count or fraction is None:
        return str(count)
    return f"{count} ({100 * fraction:.3g} %)"


def seconds(value: float | None) -> str:
    """A duration in seconds, '—' if not measured."""
    return "—" if value is None else f"{value:g}"


def verdicts(agg: Mapping[str, Any]) -> str:
    """'pass pass FAIL' of the N runs, with the scenario's verdict first."""
    runs = " ".join("pass" if v else "FAIL" for v in agg["verdicts"])
    return f"{'pass' if agg['pass'] else '**FAIL**'}: {runs}"


def totals(agg: Mapping[str, Any]) -> dict[str, Any]:
    """Each measure summed over the kinds of operation, with its fraction of every acknowledged operation."""
    kinds = agg["accounting"].values()
    acknowledged = sum(k["acknowledged"] for k in kinds)
    out: dict[str, Any] = {"acknowledged": acknowledged}
    for m in MEASURES:
        count = sum(k[m] or 0 for k in kinds)
        out[m] = (count, count / acknowledged if acknowledged else None)
    return out


def overview_row(agg: Mapping[str, Any]) -> str:
    """One scenario's summary row."""
    t = totals(agg)
    mails = agg["accounting"].get("mails", {})
    rec = agg["recovery_s"]
    return (
        f"| {agg['scenario']} | {verdicts(agg)} | {share(*t['lost'])} | {share(*t['duplicated'])} "
        f"| {mails.get('duplicated', '—')} ({mails.get('window', '—')}) | {share(*t['unexpected'])} "
        f"| {share(*t['recovered'])} | {seconds(rec['min'])} / {seconds(rec['median'])} / {seconds(rec['max'])} "
        f"| {agg['wall_s']:g} |"
    )


def accounting_rows(agg: Mapping[str, Any]) -> list[str]:
    """One row per kind of operation of a scenario, its counts over the N runs."""
    rows = []
    for kind in KINDS:
        k = agg["accounting"].get(kind)
        if k is None:
            continue
        cells = " | ".join(share(k[m], k[f"{m}_fraction"]) for m in MEASURES)
        rows.append(f"| {agg['scenario']} | {kind} | {k['acknowledged']} | {cells} |")
    return rows


def oracle_sentence(agg: Mapping[str, Any], first_run: Mapping[str, Any]) -> str:
    """What the scenario's oracle wants, in a sentence."""
    parts = [COMMON_ORACLE]
    if "webhooks_expected" in first_run:
        parts.append(WEBHOOK_ORACLE)
    if agg.get("oracle"):
        parts.append(str(agg["oracle"]))
    return "; ".join(parts)


def scenario_lines(agg: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """A scenario's entry: what, its oracle, the runs' verdicts and wall times."""
    walls = " / ".join(f"{float(r.get('wall_s') or 0):g}" for r in runs)
    return [
        f"- **{agg['scenario']}**: {agg['what']}. Oracle: {oracle_sentence(agg, runs[0] if runs else {})}. "
        f"{agg['runs']} runs: {verdicts(agg)}; wall s {walls}."
    ]


def summary_section(aggregates: Sequence[Mapping[str, Any]], n_runs: int) -> list[str]:
    """The overview table, the accounting table and the scenarios' list."""
    return [
        f"## Every scenario, {n_runs} runs each",
        "",
        "Lost, duplicated, unexpected and recovered: summed over the runs and over the kinds of operation, as a "
        "fraction of every acknowledged one (the next table splits them by kind). Recovery: min / median / max over "
        "the runs.",
        "",
        OVERVIEW_HEADER,
        *(overview_row(a) for a in aggregates),
        "",
        "Accounting (Jepsen-style), over the runs: acknowledged are the alerts answered 201, the triggers the market "
        "made due, the mails and webhooks of the triggers written, the recurring firings the script crossed. Lost: "
        "acknowledged, never delivered; duplicated: delivered more than once (— where nothing can deliver twice); "
        "unexpected: delivered though never acknowledged (a trigger of an alert the API refused with a 4xx, a mail "
        "or webhook of no trigger, a recurring firing beyond the script); recovered: affected by the fault yet "
        "delivered in the end (a trigger whose firing trade came before the fault's start or end and was written "
        "after it; a mail or webhook pending across either edge; an alert whose creation got no answer or a 5xx "
        "that fired).",
        "",
        ACCOUNTING_HEADER,
        *(row for a in aggregates for row in accounting_rows(a)),
        "",
    ]
