"""`make soak`: its growth judge on made-up series, and a short soak on a real stack that samples, plots and reports."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # chaos is a package at the repository root

from chaos.soak import soak
from chaos.soak_judge import KINDS, Sample, judge_all, judge_series, stream_bound
from chaos.soak_report import write_soak_report

RSS_TOLERANCE = {"abs_tol": 3.0, "rel_tol": 0.02}


def test_a_series_that_climbs_then_levels_off_passes() -> None:
    warm_up = [60.0 + 8 * i for i in range(5)]
    verdict = judge_series([*warm_up, *[100.0] * 25], **RSS_TOLERANCE)
    assert verdict.levelled, verdict


def test_steady_linear_growth_fails() -> None:
    verdict = judge_series([100.0 + i for i in range(30)], **RSS_TOLERANCE)
    assert not verdict.levelled
    assert verdict.growth == pytest.approx(10.0)
    assert verdict.note == "keeps growing"


def test_a_noisy_plateau_passes() -> None:
    rng = random.Random(7)
    for _ in range(50):
        verdict = judge_series([100.0 + rng.uniform(-6, 6) for _ in range(30)], **RSS_TOLERANCE)
        assert verdict.levelled, verdict


def test_growth_that_slows_but_does_not_stop_fails() -> None:
    verdict = judge_series([100.0 + 10 * i**0.5 for i in range(30)], abs_tol=2.0, rel_tol=0.0)
    assert not verdict.levelled


def test_a_stream_filling_toward_its_cap_passes_and_one_past_it_fails() -> None:
    bound = stream_bound("{s3}:triggers", divisor=1000)
    assert bound == 200  # 100 000 / 1000, and one node of approximate trimming
    filling = [5.0 * i for i in range(30)]
    assert judge_series(filling, abs_tol=10, rel_tol=0, bound=bound).levelled
    assert not judge_series([10.0 * i for i in range(30)], abs_tol=10, rel_tol=0, bound=bound).levelled


def test_too_few_samples_fail() -> None:
    assert not judge_series([1.0, 1.0, 1.0], **RSS_TOLERANCE).levelled


def test_the_judge_covers_every_series_of_every_sample() -> None:
    samples = [
        Sample(float(t), {"rss": {"a": 50.0, "b": 50.0 + 3 * t}, "streams": {"{s1}:ticks": 150.0}}) for t in range(10)
    ]
    verdicts = judge_all(samples, divisor=1000)
    assert verdicts["rss"]["a"].levelled and not verdicts["rss"]["b"].levelled
    assert verdicts["streams"]["{s1}:ticks"].levelled
    assert set(verdicts) == set(KINDS)


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_a_short_soak_samples_plots_and_reports(tmp_path: Path) -> None:
    result = await soak(minutes=0.3, sample_s=2.5, trades_per_s=200.0, alerts_per_s=3.0, root=tmp_path / "work")
    assert "error" not in result, result["error"]
    assert result["oracle"]["pass"], result["oracle"]
    assert result["oracle"]["triggers_seen"] > 10
    assert len(result["samples"]) >= 6
    last = result["samples"][-1].series
    assert {"alerts", "evaluator-1", "notifier-1", "ingest-1", "gateway"} <= set(last["rss"])
    assert last["fds"]["evaluator-1"] > 0 and last["redis"]["used_memory"] > 0
    assert any(name.endswith(":ticks") and length > 0 for name, length in last["streams"].items())
    report = write_soak_report(result, tmp_path / "results")
    assert "| triggers_lost | 0 |" in report.read_text()
    for kind in KINDS:
        assert (tmp_path / "results" / f"soak_{kind}.png").stat().st_size > 5_000
    data = json.loads((tmp_path / "results" / "soak.json").read_text())
    assert len(data["samples"]) == len(result["samples"])
