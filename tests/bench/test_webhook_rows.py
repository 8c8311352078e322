"""The benchmark report's webhook rows: pass or miss against the issue's targets, the ratio to the hop floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from report import ROWS, write_report
from webhook_bench import receive_times, unverified

E2E = "trade sent by the fake exchange → signed webhook received by a local receiver, p99, same load"
RATE = "webhook deliveries, one notifier process, local receiver verifying every signature (once started)"


def measured(results: dict[str, Any], what: str) -> tuple[str, bool]:
    figure: tuple[str, bool] = next(measure for row, _, measure in ROWS if row == what)(results)
    return figure


def results(p99: float = 20.0, rate: int = 700, *, lost: int = 0, once: bool = True) -> dict[str, Any]:
    hooks = {"latency_ms": {"p50": 8.0, "p99": p99}, "lost": lost, "unexpected": 0, "webhooks_unverified": 0}
    hooks |= {"webhooks_received": 500 - lost, "webhooks_expected": 500}
    hooks["stages_ms_p50_p99"] = {"trigger_to_webhook": [3, 9]}
    return {
        "floors": {"redis_stream_hop_ms": {"p99": 0.5}},
        "e2e": {"webhook": hooks},
        "webhook": {
            "deliveries_per_s_after_start": rate,
            "notifier_cpu_ms_per_delivery": 1.2,
            "every_delivery_once_and_verified": once,
        },
    }


def test_the_rows_pass_within_the_targets_and_give_the_ratio_to_the_floor() -> None:
    text, ok = measured(results(), E2E)
    assert ok and "20 ms" in text and "40 times the stream hop floor" in text and "500 of 500" in text
    text, ok = measured(results(), RATE)
    assert ok and text.startswith("700 deliveries/s")


def test_the_rows_miss_when_slow_lost_or_not_verified() -> None:
    assert not measured(results(p99=101.0), E2E)[1]
    assert not measured(results(lost=1), E2E)[1]
    assert not measured(results(rate=499), RATE)[1]
    assert not measured(results(once=False), RATE)[1]
    assert measured({}, E2E) == ("not measured", False) and measured({}, RATE) == ("not measured", False)


def test_the_report_shows_the_webhook_rows_and_stages(tmp_path: Path) -> None:
    write_report(results(), tmp_path)
    text = (tmp_path / "bench.md").read_text()
    assert E2E in text and RATE in text and "Webhook end-to-end stages" in text
    assert "trade → webhook p99 is 40.0 times that floor" in text


def test_the_receivers_log_gives_first_arrivals_and_unverified_ones(tmp_path: Path) -> None:
    log = tmp_path / "received.log"
    log.write_text("1000.500 f1 1 /hook\n1002.000 f2 0 /hook\n1003.000 f1 1 /hook\n")
    assert receive_times(log) == {"f1": 1000.5, "f2": 1002.0}
    assert unverified(log) == 1
