"""How cost grows (issue 21): the evaluator as alerts grow (10 k .. 10 M), tick → trigger and trade → mail as the
tick rate grows (until saturation), REST p99 against offered load. Shorter points than the main rows: indicative.

Run: `uv run python bench/curves.py [--quick] [--out bench/results/curves.json]`. The evaluator's curves run here on
one Redis (curves_eval.py, evaluator_bench.py's pieces); trade → mail is e2e_bench.py --rates, REST is api_bench.py
--rates, each as its own process. Tables and plots: curves_report.py (bench.md, bench/results/curve_*.png).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curves_eval import alerts_curve, saturation
from curves_report import write_plots

from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import connect
from pricealert.devstack.servers import RedisServer, temp_dir

FULL = {"alerts": "10000,100000,1000000,10000000", "rates": "500,2000,5000,10000", "rest": "250,1000,2000,4000"}
QUICK = {"alerts": "2000,20000", "rates": "500,2000", "rest": "100,400"}


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def log(line: str) -> None:
    print(f"[curves {time.strftime('%H:%M:%S')}] {line}", flush=True)


def subprocess_json(script: str, *args: str) -> dict[str, Any]:
    """Run another bench script with --out to a temporary file; its JSON, or {"error": ...}."""
    with tempfile.TemporaryDirectory(prefix="bench-curves-") as folder:
        out = Path(folder) / "out.json"
        command = [sys.executable, str(Path(__file__).parent / script), *args, "--out", str(out)]
        completed = subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
        if completed.returncode != 0 or not out.exists():
            return {"error": f"{script} exited with {completed.returncode}"}
        return dict(json.loads(out.read_text()))


def mail_saturation(point: dict[str, Any], before: dict[str, Any] | None) -> str | None:
    """Why a trade → mail point is saturated, or None; with the stage whose p99 grew most since the point before."""
    offered, achieved = point["offered_rate"], point["achieved_rate"]
    samples = point.get("latencies_ms") or []
    tenth = len(samples) // 10
    grew = tenth >= 3 and sorted(samples[-tenth:])[tenth // 2] > 3 * max(0.1, sorted(samples[:tenth])[tenth // 2])
    if achieved >= 0.9 * offered and not point["lost"] and not grew:
        return None
    stages, earlier = point.get("stages_ms_p50_p99") or {}, (before or {}).get("stages_ms_p50_p99") or {}
    worst = max(stages, key=lambda k: stages[k][1] - earlier.get(k, [0, 0])[1], default=None)
    why = [f"the fake exchange sent {achieved} of {offered} trades/s"] if achieved < 0.9 * offered else []
    why += [f"{point['lost']} mails not accepted within 30 s"] if point["lost"] else []
    why += ["latency grows through the run (a backlog)"] if grew else []
    if worst:
        why.append(f"the stage that grew most: {worst} (p99 {stages[worst][1]} ms)")
    return "; ".join(why)


def rest_saturation(point: dict[str, Any], first: dict[str, Any]) -> str | None:
    """Why a REST point is saturated, or None: answers short of the offered rate, errors, p99 ten times the lowest."""
    why = []
    if point["answered_per_s"] < 0.9 * point["offered_per_s"]:
        why.append(f"answered {point['answered_per_s']} of {point['offered_per_s']:g} req/s")
    if point["errors"]:
        why.append(f"{point['errors']} errors or time-outs")
    if point["p99_ms"] > 10 * max(first["p99_ms"], 0.1):
        why.append(f"p99 {point['p99_ms']} ms, over ten times the lowest load's")
    return "; ".join(why) or None


async def evaluator_part(args: argparse.Namespace) -> dict[str, Any]:
    server = RedisServer(temp_dir("bench-curves-redis-")).start()
    redis = connect(server.url)
    try:
        args.rates_curve = []
        points = await alerts_curve(redis, server.url, args, ints(args.alerts), log)
    finally:
        await redis.aclose()
        server.stop()
    by_count = {p["alerts"]: p for p in points}
    capacity = by_count.get(args.rate_alerts, {}).get("throughput_ticks_per_s")
    for point in args.rates_curve:  # now with the throughput measured at the same alert count
        point["saturated"] = saturation(point, capacity)
    return {
        "alerts_curve": points,
        "largest": points[-1] if points else None,
        "reference": by_count.get(args.reference),
        "rates_curve": {"alerts": args.rate_alerts, "points": args.rates_curve},
    }


def e2e_part(args: argparse.Namespace) -> dict[str, Any]:
    data = subprocess_json(
        "e2e_bench.py", "--alerts", str(args.e2e_alerts), "--seconds", str(args.seconds), "--no-email",
        "--rates", ",".join(map(str, args.rates)),
    )  # fmt: skip
    points = data.get("curve") or []
    for n, point in enumerate(points):
        point["saturated"] = mail_saturation(point, points[n - 1] if n else None)
        point.pop("latencies_ms", None)
    return {"alerts": args.e2e_alerts, "points": points, **({"error": data["error"]} if "error" in data else {})}


def rest_part(args: argparse.Namespace) -> dict[str, Any]:
    data = subprocess_json(
        "api_bench.py", "--seconds", str(max(1, round(args.seconds * 2 / 3))), "--repeats", "1", "--users", "10",
        "--rates", args.rest,
    )  # fmt: skip
    points = data.get("curve") or []
    for point in points:
        point["saturated"] = rest_saturation(point, points[0])
    capacity = (data.get("median") or {}).get("requests_per_s")
    return {
        "capacity_requests_per_s": capacity,
        "points": points,
        **({"error": data["error"]} if "error" in data else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small loads (10 M not run), evaluator curves only: a smoke run in seconds"
    )
    parser.add_argument("--alerts", help=f"alert counts, ascending (default {FULL['alerts']})")
    parser.add_argument("--rates", help=f"ticks/s for the rate curves (default {FULL['rates']})")
    parser.add_argument("--rest", help=f"REST req/s offered (default {FULL['rest']})")
    parser.add_argument("--reference", type=int, help="the alert count the largest is compared with (1 M)")
    parser.add_argument("--rate-alerts", type=int, help="alerts in the index for the rate curve (1 M)")
    parser.add_argument("--e2e-alerts", type=int, help="alerts in the index for trade → mail (1 M)")
    parser.add_argument("--rate", type=int, default=2_000, help="ticks/s of tick → trigger along the alerts curve")
    parser.add_argument("--seconds", type=float, help="seconds per latency point (3)")
    parser.add_argument("--ticks", type=int, help="ticks per throughput point (50 000)")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--parts", help="which curves to measure (evaluator,e2e,rest; --quick: evaluator)")
    parser.add_argument("--out", default="bench/results/curves.json")
    args = parser.parse_args()
    preset = QUICK if args.quick else FULL
    args.alerts = args.alerts or preset["alerts"]
    args.rates = ints(args.rates or preset["rates"])
    args.rest = args.rest or preset["rest"]
    counts = ints(args.alerts)
    args.reference = args.reference or (counts[-2] if len(counts) > 1 else counts[-1])
    args.rate_alerts = args.rate_alerts or args.reference
    args.e2e_alerts = args.e2e_alerts or args.reference
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    args.ticks = args.ticks or (5_000 if args.quick else 50_000)
    args.breakdown_at = {args.reference, counts[-1]}
    # --quick skips the two curves that start a whole stack (most of a minute each): seconds, not minutes.
    parts = set((args.parts or ("evaluator" if args.quick else "evaluator,e2e,rest")).split(","))
    started = time.monotonic()
    result: dict[str, Any] = {"quick": args.quick, "seconds_per_point": args.seconds, "wall_seconds": {}}
    measures: dict[str, Callable[[], dict[str, Any]]] = {
        "evaluator": lambda: asyncio.run(evaluator_part(args)),
        "e2e": lambda: {"e2e_curve": e2e_part(args)},
        "rest": lambda: {"rest_curve": rest_part(args)},
    }
    for name, measure in measures.items():
        if name in parts:
            t0 = time.monotonic()
            result.update(measure())
            result["wall_seconds"][name] = round(time.monotonic() - t0, 1)
    result["wall_seconds"]["total"] = round(time.monotonic() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    write_plots(result, out.parent)
    print(json.dumps(result["wall_seconds"]))


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    main()
