"""Steady figures (issue 21): each run's figures kept, ratios paired run by run, medians with min, max and spread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from floor_table import floor_rows, floor_table
from ratios import RATIOS, Ratio, compute, table
from report import write_report
from spread import describe, fold, per_run, runs_of, shown, steady

HOP = next(r for r in RATIOS if r.what.startswith("tick → trigger p99"))
REST = next(r for r in RATIOS if r.what.startswith("REST create + list paced p99"))


def results(tick_p99: list[float], hop_p99: list[float]) -> dict[str, Any]:
    """Five-run-style results: the evaluator's and the floors' runs folded as the benches fold them."""
    evaluator = steady([{"latency_ms": {"p99": v}, "throughput_ticks_per_s": 70_000} for v in tick_p99])
    floors = steady([{"redis_stream_hop_ms": {"p99": v, "count": 1000}} for v in hop_p99])
    return {"evaluator": evaluator, "floors": floors}


def test_runs_fold_into_medians_with_each_runs_figure_kept_by_path() -> None:
    runs = [
        {"latency_ms": {"p99": 3.0, "p50": 1.0}, "how": "a", "flag": True},
        {"latency_ms": {"p99": 1.0, "p50": 2.0}, "how": "b", "flag": False},
        {"latency_ms": {"p99": 2.0, "p50": 3.0}, "how": "c", "flag": True},
    ]
    assert fold(runs) == {"latency_ms": {"p99": 2.0, "p50": 2.0}, "how": "a", "flag": True}
    assert per_run(runs) == {"latency_ms.p99": [3.0, 1.0, 2.0], "latency_ms.p50": [1.0, 2.0, 3.0]}
    assert per_run([{"a": 1, "b": 2}, {"a": 3}]) == {"a": [1, 3]}  # a figure some run lacks is left out
    folded = steady(runs)
    assert runs_of({"e2e": folded}, ("e2e", "latency_ms", "p99")) == [3.0, 1.0, 2.0]
    nested = {"e2e": {"webhook": folded}}  # the nearest per_run on the way down holds the figure's runs
    assert runs_of(nested, ("e2e", "webhook", "latency_ms", "p50")) == [1.0, 2.0, 3.0]
    assert runs_of({"e2e": fold(runs)}, ("e2e", "latency_ms", "p99")) is None


def test_median_min_max_and_spread_of_runs() -> None:
    assert describe([2.0, 4.0, 3.0, 1.0, 5.0]) == {"median": 3.0, "min": 1.0, "max": 5.0, "spread": 5.0, "runs": 5}
    assert describe([0.0, 1.0])["spread"] is None
    assert shown([2.0, 4.0, 3.0]) == "3 (2-4)"
    assert shown([2.5]) == "2.5" and shown(None, 7) == "7" and shown(None) == "—"


def test_each_runs_ratio_pairs_run_i_with_run_i_and_the_row_reports_their_spread() -> None:
    row = compute(HOP, results([1.0, 2.0, 1.5, 1.2, 3.0], [0.5, 0.5, 1.0, 0.4, 1.0]))
    assert row["runs"] == [2.0, 4.0, 1.5, 3.0, 3.0] and row["paired"] == "run by run"
    # The median of the runs' ratios, not the ratio of the medians (1.5 ÷ 0.5 = 3).
    assert (row["ratio"], row["min"], row["max"], row["spread"]) == (3.0, 1.5, 4.0, 2.67)
    assert row["measured"] == 1.5 and row["floor"] == 0.5 and row["pass"] is True
    assert compute(HOP, results([2.0] * 5, [0.5] * 5))["pass"] is False  # 4 each run


def test_without_runs_on_one_side_the_ratios_divide_by_its_median() -> None:
    data = results([1.0, 2.0, 3.0], [0.5])
    data["floors"] = {"redis_stream_hop_ms": {"p99": 0.5}}  # a floor measured once, no per_run
    row = compute(HOP, data)
    assert row["runs"] == [2.0, 4.0, 6.0] and row["paired"] == "each run over the floor's median"
    data["evaluator"] = {"latency_ms": {"p99": 1.0}}
    row = compute(HOP, data)
    assert (row["runs"], row["paired"], row["spread"]) == ([2.0], "medians", 1.0)
    uneven = results([1.0, 2.0, 3.0], [0.5, 0.5])  # run counts differ: no pairing by index
    assert compute(HOP, uneven)["paired"] == "each run over the floor's median"


def test_a_goal_in_every_run_misses_when_one_run_misses() -> None:
    def rest(p99s: list[float]) -> dict[str, Any]:
        api = steady([{"paced": {"median": {"p99_ms": v}}} for v in p99s])
        hop = steady([{"http_hop": {"paced": {"median": {"p99_ms": 2.0}}}} for _ in p99s])
        return {"api": api, "floors": hop}

    assert REST.every_run and REST.goal == "≤ 2, in every run"
    assert compute(REST, rest([3.0, 3.5, 3.0, 3.0, 3.0]))["pass"] is True
    one_slow = compute(REST, rest([3.0, 3.0, 4.5, 3.0, 3.0]))
    assert one_slow["ratio"] == 1.5 and one_slow["max"] == 2.25 and one_slow["pass"] is False
    at_most = Ratio("x", ("api", "paced", "median", "p99_ms"), ("floors", "http_hop", "paced", "median", "p99_ms"), 2)
    assert compute(at_most, rest([3.0, 3.0, 4.5, 3.0, 3.0]))["pass"] is True  # the median alone


def test_the_tables_print_median_min_max_and_spread(tmp_path: Path) -> None:
    data = results([1.0, 2.0, 1.5, 1.2, 3.0], [0.5, 0.5, 1.0, 0.4, 1.0])
    assert f"| {HOP.what} | ≤ 3 | 3 (1.5-4) | 2.67 | 1.5 ÷ 0.5 | pass |" in table([compute(HOP, data)])
    floors = floor_rows(data)
    assert [row["what"].split(" (")[0] for row in floors] == ["Redis stream hop"]
    assert floors[0] | {"median": 0.5, "min": 0.4, "max": 1.0, "spread": 2.5, "runs": 5} == floors[0]
    assert "| Redis stream hop (XADD → blocked XREADGROUP), p99 | 0.5 ms (0.4-1) | 2.5 |" in floor_table(floors)
    write_report(data, tmp_path, total_seconds=754, machine_info=None)
    lines = (tmp_path / "bench.md").read_text().splitlines()
    row = next(line for line in lines if line.startswith("| tick → trigger event, p99, 2 000 ticks/s, 1 000 000"))
    assert "| 1.5 ms (1-3) | pass |" in row
    assert lines[-1].startswith("Wall time of the whole run: 12 min 34 s")
