"""chaos/results/chaos.json and chaos.md: each scenario over its runs, one row per run, then the hostile-input run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.latency import latency_line
from chaos.report_summary import scenario_lines, summary_section
from chaos.stack import CHAOS_ENV
from chaos.webhooks import WEBHOOK_ENV

HEADER = (
    "| scenario | triggers lost | dup | unexpected | emails lost | dup (window) | alerts lost | dead letters "
    "| recovery s | settled s | pass |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


RECURRING_HEADER = (
    "| scenario | recurring alerts | firings seen / expected | alerts lost | gaps | doubled | count off | invalid "
    "| emails lost | dup | firing_count wrong | history wrong | unindexed | pass |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)

WEBHOOK_HEADER = (
    "| scenario | webhooks expected | received | lost | dup (window) | unexpected | unverified | during the fault "
    "| next s | settled s | pass |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def _n(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    return "-" if value is None else str(value)


def label(r: dict[str, Any]) -> str:
    """A run's name: its scenario's, and its number when the scenario ran more than once."""
    return f"{r['scenario']} #{r['run']}" if r.get("run") else str(r["scenario"])


def row(r: dict[str, Any]) -> str:
    """One scenario's table row."""
    if "error" in r and "triggers_lost" not in r:
        return f"| {label(r)} | error: {r['error'][:80]} | | | | | | | | | **FAIL** |"
    verdict = "pass" if r.get("pass") else "**FAIL**"
    return (
        f"| {label(r)} | {_n(r['triggers_lost'])} | {r['triggers_duplicated']} "
        f"| {_n(r['triggers_unexpected'])} | {_n(r['emails_lost'])} "
        f"| {r['emails_duplicated']} ({r['mail_crash_window']}) | {_n(r['alerts_lost'])} | {r['dead_letters']} "
        f"| {_n(r.get('recovery_s'))} | {_n(r.get('settled_s'))} | {verdict} |"
    )


def recurring_row(r: dict[str, Any]) -> str:
    """One scenario's row of the recurring alerts' table."""
    if "recurring_pass" not in r:
        return f"| {label(r)} | not judged | | | | | | | | | | | | **FAIL** |"
    verdict = "pass" if r["recurring_pass"] else "**FAIL**"
    return (
        f"| {label(r)} | {r['recurring_alerts']} "
        f"| {r['recurring_firings_seen']} / {r['recurring_firings_expected']} | {_n(r['recurring_lost'])} "
        f"| {_n(r['recurring_gaps'])} | {_n(r['recurring_doubled'])} | {_n(r['recurring_count_off'])} "
        f"| {r['recurring_invalid_count']} | {_n(r['recurring_emails_lost'])} | {r['recurring_emails_duplicated']} "
        f"| {r['recurring_api_wrong_count']} | {_n(r['recurring_history_wrong'])} | {_n(r['recurring_unindexed'])} "
        f"| {verdict} |"
    )


def webhook_row(r: dict[str, Any]) -> str:
    """One scenario's row of the webhooks' table."""
    verdict = "pass" if r.get("webhooks_pass") else "**FAIL**"
    return (
        f"| {label(r)} | {r['webhooks_expected']} | {r['webhooks_received']} | {_n(r['webhooks_lost'])} "
        f"| {r['webhooks_duplicated']} ({r['webhook_crash_window']}) | {_n(r['webhooks_unexpected'])} "
        f"| {r['webhooks_unverified']} | {r['webhooks_during_fault']} | {_n(r.get('webhook_next_s'))} "
        f"| {_n(r.get('webhook_settled_s'))} | {verdict} |"
    )


def webhook_section(results: list[dict[str, Any]]) -> list[str]:
    """The webhook scenarios' table, if any ran."""
    judged = [r for r in results if "webhooks_pass" in r]
    if not judged:
        return []
    return [
        "Webhooks (the webhook-* and *-webhook scenarios): each of the 12 users has a webhook channel on a local "
        "endpoint (created with POST /channels) and every alert notifies the account's email and that webhook. "
        "Each firing must arrive once at its user's endpoint (webhook-id = firing id), every signature verified "
        "with the channel's secret by the `standardwebhooks` package as a receiver would; duplicates ≤ the crash "
        "window: webhook deliveries leased by the notifier or read by the endpoint, not yet recorded as sent, when "
        "the fault hit. Next and settled: fault end → the first and the last webhook after it. Settings: "
        + ", ".join(f"`{k}={v}`" for k, v in WEBHOOK_ENV.items())
        + ".",
        "",
        WEBHOOK_HEADER,
        *(webhook_row(r) for r in judged),
        "",
    ]


def details(r: dict[str, Any]) -> list[str]:
    """What a reader needs beyond the row: the fault, counts, and for a failure the evidence."""
    notes = "; ".join(r.get("fault_notes", []))
    lines = [f"- **{label(r)}**" + (f": {notes}" if notes else "")]
    if "triggers_expected" in r:
        lines.append(
            f"  alerts {r['alerts_acknowledged']}/{r['alerts_attempted']} answered 201; triggers "
            f"{r['triggers_seen']} seen / {r['triggers_expected']} expected "
            f"(+{len(r.get('alerts_recovered', []))} from alerts whose creation got no answer or a 5xx); emails "
            f"{r['emails_accepted']} accepted / {r['emails_expected']} expected; next trigger "
            f"{_n(r.get('next_trigger_s'))} s, next email {_n(r.get('next_email_s'))} s after the fault "
            f"ended; {r.get('trades_played', 0)} trades played; {r['wall_s']} s wall."
        )
        lines.append(latency_line(r))
    if "recurring_alerts" in r:
        lines.append(
            f"  recurring: {r['recurring_alerts']} alerts answered 201 (+{r['recurring_recovered']} whose creation "
            f"got no 201 fired), {r['recurring_firings_seen']} firings seen / {r['recurring_firings_expected']} "
            f"scripted, emails {r['recurring_emails_accepted']} accepted / {r['recurring_emails_expected']} "
            f"firings."
        )
    if "refusals_503" in r:
        lines.append(
            f"  creations refused: {r['refusals_503']} with 503 database_unavailable and Retry-After, "
            f"{len(r['refusals_wrong'])} otherwise; next 201 {_n(r.get('next_201_s'))} s after the fault ended."
        )
    if "refused_expected" in r:
        lines.append(
            f"  mails Postfix rejects: {r['refused_expected']} firings, each expected to fail once with 550 5.1.1 and "
            f"never be retried nor mailed: {r['refused_results_wrong_count']} results otherwise, "
            f"{len(r['refused_mailed'])} mailed, {len(r['refused_history_wrong'])} shown otherwise by the API."
        )
    if r.get("api_5xx_seen"):
        lines.append(
            f"  the API answered 5xx {r['api_5xx_seen']} times to the oracle's status reads: "
            f"{json.dumps(r.get('api_5xx_samples', []))[:400]}"
        )
    if not r.get("pass"):
        for key in (
            "error",
            "triggers_lost",
            "triggers_unexpected",
            "emails_lost",
            "emails_unexpected",
            "alerts_lost",
            "status_error",
            "status_wrong",
            "crashed_processes",
            "refusals_wrong",
            "recurring_lost",
            "recurring_gaps",
            "recurring_doubled",
            "recurring_count_off",
            "recurring_invalid",
            "recurring_emails_lost",
            "recurring_api_wrong",
            "recurring_history_wrong",
            "recurring_unindexed",
            "webhooks_lost",
            "webhooks_unexpected",
            "refused_results_wrong",
            "refused_mailed",
            "refused_history_wrong",
        ):
            if r.get(key):
                lines.append(f"  {key}: {json.dumps(r[key])[:600]}")
        busy = {k: v for k, v in r.get("backlog", {}).items() if v}
        if busy:
            lines.append(f"  backlog at the end: {json.dumps(busy)}")
        lines.extend(f"      {line}" for line in r.get("log_excerpt", [])[:12])
    return lines


def hostile_section(runs: list[dict[str, Any]]) -> list[str]:
    """The hostile-input runs' summary, one pair of rows per database."""
    if not runs:
        return []
    lines = [
        "",
        "## Hostile input",
        "",
        "| database | run | requests | server errors (5xx) | transport errors | crashes | pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in runs:
        for name in ("schemathesis", "handwritten"):
            part = h.get(name, {})
            verdict = "pass" if part.get("pass") else "**FAIL**"
            lines.append(
                f"| {h.get('database', '—')} | {name} | {_n(part.get('requests'))} "
                f"| {_n(part.get('server_errors'))} | {_n(part.get('transport_errors'))} "
                f"| {_n(part.get('crashes'))} | {verdict} |"
            )
    for h in runs:
        where = h.get("database", "—")
        for name in ("schemathesis", "handwritten"):
            if h.get(name, {}).get("finished") is False:
                lines.append(f"- {where} {name}: did not finish within its time limit (nothing judged)")
            for finding in h.get(name, {}).get("findings", [])[:15]:
                lines.append(f"- {where} {name}: {finding}")
        for line in h.get("log_tracebacks", [])[:12]:
            lines.append(f"- {where} logged: {line}")
        if h.get("error"):
            lines.append(f"- {where}: the run failed: {h['error']}")
    return lines


def write_report(scenarios: list[dict[str, Any]], hostile: list[dict[str, Any]], out: Path, wall_s: float) -> None:
    """Write chaos.json (each scenario's aggregate with every run under 'results') and chaos.md into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"scenarios": scenarios, "hostile": hostile, "settings": CHAOS_ENV, "wall_seconds": round(wall_s, 1)}
    (out / "chaos.json").write_text(json.dumps(data, indent=2, default=str))
    results = [r for s in scenarios for r in s["results"]]
    passed = sum(1 for s in scenarios if s.get("pass"))
    n_runs = max((s["runs"] for s in scenarios), default=0)
    md = [
        "# make chaos",
        "",
        f"{passed}/{len(scenarios)} fault scenarios pass in every one of their runs ({n_runs} each); whole run "
        f"{wall_s:.0f} s. Each run of a scenario is on a fresh "
        "stack (Redis with AOF everysec, SQLite, an aiosmtpd SMTP server, the fake exchange, every service as its own "
        "process; the pg-* scenarios: auth and alerts on a PostgreSQL server of the stack's own instead of SQLite; "
        "the postfix-* scenarios: an instance of Debian's Postfix instead of aiosmtpd, mails read from its Maildir; "
        "the cluster-* scenarios: a Redis Cluster of 3 masters + 3 replicas, AOF on each, and 2 processes "
        "each of ingest, the evaluator and the notifier sharing the 16 shards): 12 users create 260 alerts on 4 "
        "symbols (200 once alerts that the scripted market crosses: above, below and "
        "cross both ways; 40 it never reaches; 20 every_time alerts with a 1 s cooldown: above, below, cross, "
        "enter_range, exit_range), then the market ramps up (with a burst that fires 40 alerts at once, "
        "the moment the fault is injected), holds, ramps down and holds, then swings 3 times back and forth across "
        "the recurring alerts' levels (below every once alert's target), with 200 trades/s of steady load.",
        "",
        "Pass: 0 triggers lost, 0 unexpected, 0 duplicated (the evaluator's Lua script makes a duplicate trigger "
        "impossible: its window is 0); 0 emails lost or unexpected and duplicates ≤ the crash window; 0 alerts "
        "answered 201 and never evaluated; every alert's status and delivery status right; no process crashed. "
        "The crash window is the number of mails in flight when the fault hit: triggers leased by a notifier or "
        "accepted by the SMTP server but not yet recorded as sent. Recovery: fault end → both the next trigger "
        "and the next email after it (when the market had nothing left to fire, the next email alone; "
        "kill-alerts-api: → the next 201). Settled: fault end → the last email. Both of the once alerts' triggers "
        "and mails, but for the *-swing scenarios, whose fault hits while the market swings across the recurring "
        "alerts: theirs.",
        "",
        *summary_section(scenarios, n_runs),
        "## Scenarios",
        "",
        *(line for s in scenarios for line in scenario_lines(s, s["results"])),
        "",
        "## Every run",
        "",
        HEADER,
        *(row(r) for r in results),
        "",
        "Recurring alerts (every_time): each must fire as often as the script crosses it (count off: it did not), "
        "its firing numbers 1..n with no gap and none twice in the triggers streams (doubled), each firing valid "
        "(trigger id `<alert id>:<n>`, a price that may fire it, the cooldown kept), each firing's mail accepted "
        "(duplicates count in the crash window above, with the once alerts' mails), the API's firing_count n with "
        "the latest mail sent, GET /alerts/{id}/firings exactly those n firings, all sent, and the alert still "
        "in the evaluator's index.",
        "",
        RECURRING_HEADER,
        *(recurring_row(r) for r in results if "error" not in r or "triggers_lost" in r),
        "",
        *webhook_section(results),
        "## Details",
        "",
    ]
    for r in results:
        md.extend(details(r))
    md.extend(hostile_section(hostile))
    md.extend(
        [
            "",
            "Settings that differ from production defaults, so that recovery takes seconds: "
            + ", ".join(f"`{k}={v}`" for k, v in CHAOS_ENV.items() if k not in ("LOG_LEVEL", "ENV"))
            + ".",
        ]
    )
    (out / "chaos.md").write_text("\n".join(md) + "\n")
