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
from chaos.soak_workload import SoakLoad, plan_alert, soak_oracle
from chaos.workload import Created, Market, fires_at

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


def flawless_load(count: int = 30) -> SoakLoad:
    """A load whose every alert was acknowledged; those the swing reaches fired once at their target's far side and
    were mailed once, and every alert was deleted."""
    rng = random.Random(1)
    load = SoakLoad(stack=None, client=None, users=[])  # type: ignore[arg-type]  # the oracle reads neither
    for n in range(count):
        alert = plan_alert(n, 12, rng)
        load.created.append(Created(alert, 201, alert_id=f"id-{n}"))
        load.deletes["204"] += 1
        if alert.must_fire:
            price = Market.price(alert.symbol, 8 if alert.condition == "above" else -8)
            load.triggers[alert.name] = [{"name": alert.name, "trigger_id": f"id-{n}", "price": str(price)}]
            load.mails[f"id-{n}"] += 1
    return load


def test_the_swing_reaches_every_alert_meant_to_fire_and_no_other() -> None:
    rng = random.Random(3)
    prices = {(s, lv) for s in ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT") for lv in range(-8, 9)}
    for n in range(300):
        alert = plan_alert(n, 12, rng)
        reached = any(fires_at(alert, Market.price(s, lv)) for s, lv in prices if s == alert.symbol)
        assert reached == alert.must_fire, alert
        assert all(Market.price(alert.symbol, lv) != alert.target for lv in range(-8, 9))


def test_the_oracle_passes_a_flawless_load_and_counts_indeterminate_requests_apart() -> None:
    load = flawless_load()
    load.created.append(Created(plan_alert(99, 12, random.Random(1)), None, error="ReadTimeout"))
    load.deletes["ReadTimeout"] += 1
    verdict = soak_oracle(load)
    assert verdict["pass"], verdict
    assert verdict["alerts_indeterminate"] == 1 and verdict["deletes_indeterminate"] == 1


def test_the_oracle_fails_a_lost_doubled_or_unexpected_trigger_or_mail() -> None:
    lost = flawless_load()
    lost.triggers.pop(next(iter(lost.triggers)))
    doubled = flawless_load()
    first = next(iter(doubled.triggers.values()))
    first.append(dict(first[0]))
    unexpected = flawless_load()
    never = next(c for c in unexpected.created if not c.alert.must_fire)
    unexpected.triggers[never.alert.name] = [{"name": never.alert.name, "trigger_id": "x", "price": "1"}]
    unexpected.mails["x"] += 1
    mail_twice = flawless_load()
    mail_twice.mails[next(iter(mail_twice.mails))] += 1
    refused = flawless_load()
    refused.deletes["500"] += 1
    assert soak_oracle(lost)["triggers_lost"]
    assert soak_oracle(doubled)["triggers_duplicated"] == 1
    assert soak_oracle(unexpected)["triggers_unexpected"] == [never.alert.name]
    assert soak_oracle(mail_twice)["emails_duplicated"] == 1
    assert soak_oracle(refused)["deletes_failed"] == 1
    assert not any(soak_oracle(load)["pass"] for load in (lost, doubled, unexpected, mail_twice, refused))


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
