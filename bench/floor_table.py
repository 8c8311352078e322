"""The floors and ceilings of a run as a table: each the median of its runs with min, max and spread (issue 21)."""

from __future__ import annotations

from typing import Any

from spread import describe, runs_of

# (what, path in the results, unit)
FLOORS = [
    ("Redis stream hop (XADD → blocked XREADGROUP), p99", ("floors", "redis_stream_hop_ms", "p99"), "ms"),
    ("SMTP accept (one mail, open connection), p99", ("floors", "smtp_accept_ms", "p99"), "ms"),
    ("loopback WebSocket frame, p99", ("floors", "websocket_frame_ms", "p99"), "ms"),
    ("signed webhook POST to the local receiver, p99", ("floors", "webhook_post_ms", "p99"), "ms"),
    (
        "composite trade → mail floor (2 hops + 1 frame + 1 accept p99s)",
        ("floors", "trade_to_mail_floor_ms", "p99"),
        "ms",
    ),
    (
        "read ceiling (16 streams read at once, XREADGROUP + XACK)",
        ("floors", "read_ceiling", "entries_per_s"),
        "entries/s",
    ),
    ("SMTP accept ceiling (the notifier's connections)", ("floors", "smtp_accept_ceiling", "mails_per_s"), "mails/s"),
    ("HTTP hop capacity (wrk)", ("floors", "http_hop", "median", "requests_per_s"), "req/s"),
    ("HTTP hop p99, paced", ("floors", "http_hop", "paced", "median", "p99_ms"), "ms"),
]


def _figure(results: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def floor_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every floor measured: its median, min, max and spread over the runs (the median alone without runs)."""
    rows = []
    for what, path, unit in FLOORS:
        median = _figure(results, path)
        if median is None:
            continue
        values = runs_of(results, path)
        stats = describe(values) if values else {"median": median, "min": None, "max": None, "spread": None, "runs": 1}
        rows.append({"what": what, "unit": unit, "path": ".".join(path), **stats, "median": median})
    return rows


def floor_table(rows: list[dict[str, Any]]) -> list[str]:
    """The floor rows as Markdown lines ([] when none was measured)."""
    if not rows:
        return []
    lines = ["| floor or ceiling (this run) | median (min-max) | spread |", "|---|---|---|"]
    for row in rows:
        several = row["runs"] > 1 and row["min"] is not None
        figure = f"{row['median']:g} {row['unit']}" + (f" ({row['min']:g}-{row['max']:g})" if several else "")
        spread = f"{row['spread']:g}" if several and row["spread"] is not None else "—"
        lines.append(f"| {row['what']} | {figure} | {spread} |")
    return lines
