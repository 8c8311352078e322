"""Issue 21's goals: each row a ratio of a measured figure to a floor or ceiling of the same run, pass or miss."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from spread import describe, runs_of


@dataclass(frozen=True)
class Ratio:
    """One goal: the figure at `measured` divided by the one at `floor` (or by the constant `floor_value`, a budget),
    at most or at least `limit`."""

    what: str
    measured: tuple[str, ...]
    floor: tuple[str, ...]
    limit: float
    at_most: bool = True
    every_run: bool = False  # the goal holds in every run, not only for the median
    floor_value: float | None = None

    @property
    def goal(self) -> str:
        """The goal as the table shows it."""
        return f"{'≤' if self.at_most else '≥'} {self.limit:g}{', in every run' if self.every_run else ''}"


RATIOS = [
    Ratio(
        "tick → trigger p99 (2 000 ticks/s, 1 M alerts) ÷ stream hop p99",
        ("evaluator", "latency_ms", "p99"),
        ("floors", "redis_stream_hop_ms", "p99"),
        3,
    ),
    Ratio(
        "trade → SMTP accept p99 (same load) ÷ composite trade → mail floor",
        ("e2e", "latency_ms", "p99"),
        ("floors", "trade_to_mail_floor_ms", "p99"),
        3,
    ),
    Ratio(
        "trade → SMTP accept max ÷ composite trade → mail floor",
        ("e2e", "latency_ms", "max"),
        ("floors", "trade_to_mail_floor_ms", "p99"),
        10,
    ),
    Ratio(
        "evaluator ticks/s ÷ read ceiling",
        ("evaluator", "throughput_ticks_per_s"),
        ("floors", "read_ceiling", "entries_per_s"),
        0.6,
        at_most=False,
    ),
    Ratio(
        "notifier mails/s (once started) ÷ SMTP accept ceiling",
        ("notifier", "emails_per_s_after_start"),
        ("floors", "smtp_accept_ceiling", "mails_per_s"),
        0.7,
        at_most=False,
    ),
    Ratio(
        "REST create + list paced p99 ÷ HTTP hop paced p99",
        ("api", "paced", "median", "p99_ms"),
        ("floors", "http_hop", "paced", "median", "p99_ms"),
        2,
        every_run=True,
    ),
    Ratio(
        "REST capacity ÷ HTTP hop capacity",
        ("api", "median", "requests_per_s"),
        ("floors", "http_hop", "median", "requests_per_s"),
        0.5,
        at_most=False,
    ),
    Ratio(
        "bytes per alert (Redis + process), 10 M alerts ÷ a budget of 250 B",
        ("curves", "largest", "bytes_per_alert"),
        (),
        1,
        floor_value=250,
    ),
    Ratio(
        "tick → trigger p99 (2 000 ticks/s), 10 M alerts ÷ the same at 1 M",
        ("curves", "largest", "latency_ms", "p99"),
        ("curves", "reference", "latency_ms", "p99"),
        1.5,
    ),
]


def figure(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    """The number at `path` in the results, or None if any step is missing or it is not a positive number."""
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number and value > 0 else None


def pairs(ratio: Ratio, results: dict[str, Any]) -> tuple[list[float], str] | None:
    """Each run's ratio and how it was paired: run i over run i when both sides kept their runs (as many), else
    each kept run over the other side's median, else one ratio of the medians; None when a side is missing."""
    constant = ratio.floor_value is not None
    measured, floor = figure(results, ratio.measured), ratio.floor_value if constant else figure(results, ratio.floor)
    if measured is None or floor is None:
        return None
    measured_runs = runs_of(results, ratio.measured)
    floor_runs = None if constant else runs_of(results, ratio.floor)
    if measured_runs and floor_runs and len(measured_runs) == len(floor_runs) and all(floor_runs):
        return [m / f for m, f in zip(measured_runs, floor_runs, strict=True)], "run by run"
    if measured_runs:
        return [m / floor for m in measured_runs], "each run over the floor's median"
    if floor_runs and all(floor_runs):
        return [measured / f for f in floor_runs], "the median over each run of the floor"
    return [measured / floor], "medians"


def within(ratio: Ratio, value: float) -> bool:
    """Whether one ratio meets the goal."""
    return value <= ratio.limit if ratio.at_most else value >= ratio.limit


def compute(ratio: Ratio, results: dict[str, Any]) -> dict[str, Any]:
    """One row: the two figures (medians), the ratio per run with its median, min, max and spread (max ÷ min),
    and pass on the median ratio (on every run's with `every_run`); None, "not measured", when an input is missing."""
    constant = ratio.floor_value is not None
    measured, floor = figure(results, ratio.measured), ratio.floor_value if constant else figure(results, ratio.floor)
    row: dict[str, Any] = {
        "what": ratio.what,
        "goal": ratio.goal,
        "measured": measured,
        "floor": floor,
        "inputs": [".".join(ratio.measured), f"{ratio.floor_value:g}" if constant else ".".join(ratio.floor)],
    }
    paired = pairs(ratio, results)
    if paired is None:
        return row | {"ratio": None, "pass": None}
    values, how = paired
    stats = describe(values)
    median = round(statistics.median(values), 2)
    ok = all(within(ratio, v) for v in values) if ratio.every_run else within(ratio, median)
    return row | {
        "ratio": median,
        "min": round(stats["min"], 2),
        "max": round(stats["max"], 2),
        "spread": stats["spread"],
        "runs": [round(v, 3) for v in values],
        "paired": how,
        "pass": ok,
    }


def ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal's row, computed from this run's results."""
    return [compute(ratio, results) for ratio in RATIOS]


def verdict(row: dict[str, Any]) -> str:
    """pass, **miss** or not measured."""
    return "not measured" if row["pass"] is None else ("pass" if row["pass"] else "**miss**")


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The ratio rows as Markdown lines: the median ratio (min-max over the runs), spread, the medians divided."""
    lines = [
        "| ratio (same run) | goal | median (min-max) | spread | figures (medians) | |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["ratio"] is None:
            lines.append(f"| {row['what']} | {row['goal']} | — | — | — | {verdict(row)} |")
            continue
        several = len(row["runs"]) > 1
        ratio = f"{row['ratio']:g} ({row['min']:g}-{row['max']:g})" if several else f"{row['ratio']:g}"
        spread = f"{row['spread']:g}" if several and row["spread"] is not None else "—"
        lines.append(
            f"| {row['what']} | {row['goal']} | {ratio} | {spread} | {row['measured']:g} ÷ {row['floor']:g} "
            f"| {verdict(row)} |"
        )
    return lines
