"""The cost curves (bench/curves.py) with tiny loads: the bulk loader writes what the index script writes, the JSON,
the tables and the plots come out, and saturation is told apart from a steady point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from alert_index_setup import load_alerts
from curves import mail_saturation, rest_saturation
from curves_eval import saturation
from curves_report import PLOTS, section, write_plots
from ratios import RATIOS, compute
from redis.asyncio import Redis

BENCH = Path(__file__).parents[2] / "bench"


async def index_contents(redis: Redis) -> dict[bytes, Any]:
    """Every key's members with their scores or fields with their values, clock readings (a member's indexed_at, a
    definition's "at") left out."""
    contents: dict[bytes, Any] = {}
    for key in await redis.keys("*"):
        if await redis.type(key) == b"hash":
            fields = await redis.hgetall(key)
            contents[key] = {
                f: {k: v for k, v in json.loads(d).items() if k != "at"} if d[:1] == b"{" else d
                for f, d in fields.items()
            }
            continue
        members = await redis.zrange(key, 0, -1, withscores=True)
        contents[key] = sorted((b"\t".join(m.split(b"\t")[:1] + m.split(b"\t")[2:]), s) for m, s in members)
    return contents


async def test_the_bulk_loader_writes_the_keys_the_index_script_writes(redis: Redis) -> None:
    await load_alerts(redis, 1_500, 40, 16, script=True)
    await load_alerts(redis, 3_000, 40, 16, script=True, first=1_500)  # added to, as curves.py does
    by_script = await index_contents(redis)
    await redis.flushall()
    await load_alerts(redis, 1_500, 40, 16)
    await load_alerts(redis, 3_000, 40, 16, first=1_500)
    by_bulk = await index_contents(redis)
    assert len(by_script) == 40 and sum(map(len, by_script.values())) == 3_000
    assert by_bulk == by_script


async def test_a_mixed_load_indexes_its_plain_alerts_in_bulk_and_the_rest_by_script(redis: Redis) -> None:
    await load_alerts(redis, 3_000, 40, 16, advanced=600, script=True)
    by_script = await index_contents(redis)
    await redis.flushall()
    await load_alerts(redis, 3_000, 40, 16, advanced=600)
    assert any(b":defs" in key for key in by_script) and any(b":above:" in key for key in by_script)
    assert await index_contents(redis) == by_script


def test_the_evaluator_curves_run_end_to_end_with_tiny_loads(tmp_path: Path) -> None:
    out = tmp_path / "curves.json"
    command = [sys.executable, str(BENCH / "curves.py"), "--parts", "evaluator", "--alerts", "300,600", "--rates"]
    command += ["300", "--rate", "300", "--seconds", "0.5", "--ticks", "500", "--symbols", "20", "--out", str(out)]
    subprocess.run(command, check=True, timeout=110, stdout=subprocess.DEVNULL)
    curves = json.loads(out.read_text())
    assert [p["alerts"] for p in curves["alerts_curve"]] == [300, 600]
    assert curves["largest"]["alerts"] == 600 and curves["reference"]["alerts"] == 300
    assert all(p["throughput_ticks_per_s"] > 0 and p["bytes_per_alert"] > 0 for p in curves["alerts_curve"])
    assert curves["largest"]["memory_breakdown"]["kinds"]["above"]["keys"] >= 10
    assert [p["offered_rate"] for p in curves["rates_curve"]["points"]] == [300]
    assert (tmp_path / PLOTS[0]).stat().st_size > 0 and (tmp_path / PLOTS[1]).stat().st_size > 0
    assert "| 600 | " in "\n".join(section(curves))
    rows = {r.what: compute(r, {"curves": curves}) for r in RATIOS if r.measured[0] == "curves"}
    assert len(rows) == 2 and all(row["ratio"] is not None for row in rows.values())


def mail_point(rate: int, achieved: int, lost: int = 0, latencies: list[float] | None = None) -> dict[str, Any]:
    return {
        "offered_rate": rate,
        "achieved_rate": achieved,
        "lost": lost,
        "latency_ms": {"p50": 5.0, "p95": 9.0, "p99": 10.0, "max": 11.0},
        "latencies_ms": latencies or [5.0] * 40,
        "stages_ms_p50_p99": {"trade_to_ingest": [1, 2], "trigger_to_smtp": [3, 40 if lost else 5]},
    }


def test_saturation_is_where_the_rate_falls_short_or_latency_grows() -> None:
    steady = {"offered_rate": 2000, "achieved_rate": 1990, "triggers_expected": 500, "triggers_seen": 500}
    assert saturation(steady | {"growth": 1.2}, 40_000) is None
    assert "1500 of 2000" in str(saturation(steady | {"achieved_rate": 1500, "growth": 1.0}, None))
    assert "backlog" in str(saturation(steady | {"growth": 12.0}, 9_000))
    assert mail_saturation(mail_point(500, 500), None) is None
    why = mail_saturation(mail_point(5000, 5000, lost=3), mail_point(500, 500))
    assert why is not None and "3 mails" in why and "trigger_to_smtp" in why
    assert "backlog" in str(mail_saturation(mail_point(5000, 5000, latencies=[5.0] * 30 + [100.0] * 10), None))
    first = {"offered_per_s": 100, "answered_per_s": 100, "errors": 0, "p99_ms": 3.0}
    assert rest_saturation(first, first) is None
    assert "errors" in str(rest_saturation(first | {"offered_per_s": 4000, "answered_per_s": 2000, "errors": 9}, first))


def test_the_trade_to_mail_and_rest_curves_get_a_table_and_a_plot_each(tmp_path: Path) -> None:
    rest = [
        {"offered_per_s": r, "answered_per_s": r, "errors": 0, "p50_ms": 2.0, "p95_ms": 3.0, "p99_ms": p, "max_ms": 9.0}
        for r, p in ((250, 3.0), (4000, 900.0))
    ]
    rest[1]["saturated"], rest[0]["saturated"] = "p99 900 ms", None
    mails = [mail_point(500, 500) | {"saturated": None}, mail_point(5000, 4100) | {"saturated": "sent 4100"}]
    curves = {
        "quick": True,
        "seconds_per_point": 1,
        "e2e_curve": {"alerts": 1000, "points": mails},
        "rest_curve": {"capacity_requests_per_s": 1500, "points": rest},
    }
    write_plots(curves, tmp_path)
    assert not (tmp_path / PLOTS[0]).exists()
    assert (tmp_path / PLOTS[1]).stat().st_size > 0 and (tmp_path / PLOTS[2]).stat().st_size > 0
    text = "\n".join(section(curves))
    assert "| 5000 | — | 5 / 10 (4100) | trade → mail: sent 4100 |" in text
    assert "| 4000 | 4000 | 2 / 900 / 9 | 0 | p99 900 ms |" in text and "Quick run" in text
