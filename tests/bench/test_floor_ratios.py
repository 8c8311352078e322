"""Issue 21's ratio rows: each a figure over a floor of the same run, pass, miss or not measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ratios import RATIOS, compute, ratios, table, verdict
from report import machine, machine_line, write_report

HOP = "tick → trigger p99 (2 000 ticks/s, 1 M alerts) ÷ stream hop p99"
READ = "evaluator ticks/s ÷ read ceiling"
MAX = "trade → SMTP accept max ÷ composite trade → mail floor"


def row(results: dict[str, Any], what: str) -> dict[str, Any]:
    return compute(next(r for r in RATIOS if r.what == what), results)


def run(tick_p99: float = 1.2, ticks_per_s: int = 70_000, e2e_max: float = 20.0) -> dict[str, Any]:
    return {
        "floors": {
            "redis_stream_hop_ms": {"p99": 0.5},
            "read_ceiling": {"entries_per_s": 100_000, "batch": 1000, "batch_ms": {"p50": 9.0, "p99": 12.0}},
            "trade_to_mail_floor_ms": {"p99": 2.5},
        },
        "evaluator": {"latency_ms": {"p99": tick_p99}, "throughput_ticks_per_s": ticks_per_s},
        "e2e": {"latency_ms": {"p99": 6.0, "max": e2e_max}},
    }


def test_a_ratio_within_its_goal_passes_in_either_direction() -> None:
    assert row(run(), HOP) | {"ratio": 2.4, "pass": True} == row(run(), HOP)
    assert row(run(), HOP)["measured"] == 1.2 and row(run(), HOP)["floor"] == 0.5
    assert (row(run(), READ)["ratio"], row(run(), READ)["pass"]) == (0.7, True)
    assert (row(run(), MAX)["ratio"], row(run(), MAX)["pass"]) == (8.0, True)


def test_a_ratio_past_its_goal_misses() -> None:
    assert (row(run(tick_p99=1.6), HOP)["ratio"], row(run(tick_p99=1.6), HOP)["pass"]) == (3.2, False)
    assert row(run(ticks_per_s=59_000), READ)["pass"] is False
    assert row(run(e2e_max=26.0), MAX)["pass"] is False


def test_a_missing_or_failed_input_is_not_measured() -> None:
    results = run()
    del results["floors"]["read_ceiling"]
    assert row(results, READ)["ratio"] is None and verdict(row(results, READ)) == "not measured"
    results["floors"]["redis_stream_hop_ms"] = {"error": "floors.py exited with 1"}
    assert row(results, HOP)["pass"] is None
    assert row(run(tick_p99=0), HOP)["pass"] is None  # a zero is no figure
    assert all(r["pass"] is None for r in ratios({}))


def test_the_table_shows_each_row_with_its_figures_and_verdict() -> None:
    lines = table(ratios(run()))
    assert len(lines) == 2 + len(RATIOS)
    assert f"| {HOP} | ≤ 3 | 2.4 | — | 1.2 ÷ 0.5 | pass |" in lines
    assert f"| {READ} | ≥ 0.6 | 0.7 | — | 70000 ÷ 100000 | pass |" in lines
    assert "| REST capacity ÷ HTTP hop capacity | ≥ 0.5 | — | — | — | not measured |" in lines


def test_the_report_prints_the_machine_first_and_carries_every_ratio(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n")
    info = machine(cpuinfo) | {"load_average_before": [0.5, 0.25, 1.0]}
    assert machine_line(info).startswith("Machine: Example CPU @ 2.0GHz, ")
    write_report(run(tick_p99=1.6), tmp_path, machine_info=info)
    lines = (tmp_path / "bench.md").read_text().splitlines()
    assert lines[2] == machine_line(info) and "0.5 / 0.25 / 1 (1 / 5 / 15 min)" in lines[2]
    assert f"| {HOP} | ≤ 3 | 3.2 | — | 1.6 ÷ 0.5 | **miss** |" in lines
    assert any(
        line.startswith("Read ceiling (1 streams read at once, XREADGROUP of 1000 + XACK, redis-py): 100000 entries/s")
        for line in lines
    )
    saved = (tmp_path / "bench.json").read_text()
    assert '"ratios"' in saved and '"cpu_model": "Example CPU @ 2.0GHz"' in saved
