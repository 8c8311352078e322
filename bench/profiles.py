"""Flame graphs of the evaluator, the notifier and the alerts API under the bench rows' own loads, and where time goes.

Run: `uv run python bench/profiles.py [--seconds 10] [--rate 100] [--alerts 50000] [--only evaluator,notifier,...]`.
Each bench runs as its own command, as `make bench` runs it, with a short load; py-spy records the process that does
the work, once its load runs, into bench/results/profiles/<name>.svg:
- evaluator: the evaluator service (`python -m pricealert.evaluator`) that evaluator_bench.py's latency phase
  starts, at its 2 000 ticks/s;
- evaluator_drain: the same service draining a queue of ticks (evaluator_drain.py), the throughput row's regime
  (evaluator_bench.py drains in its own process, with the same consumers);
- notifier: the notifier service that notifier_bench.py starts, draining its queued triggers into the SMTP server;
- api: the alerts API's uvicorn processes (the supervisor and its workers) while api_bench.py's wrk capacity run
  and then its paced 1 000 req/s run go through nginx.
The evaluator's own work per tick does not grow with the alerts (they are matched in Redis, by the evaluation
script), so a smaller index than the row's 1 000 000 keeps the start short. The JSON gives each graph's top functions
by self time and the share of notable subtrees (flame_summary.py). `--native` (the default) adds C frames: garbage
collection, allocation and system calls show under the Python function that caused them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from flame_summary import summarize
from profile_attach import Target, profile_command, py_spy_works

# One latency run of the evaluator row (v1 alerts), and a small throughput phase before it.
EVALUATOR_ROW = ["--advanced", "0", "--ticks", "2000", "--repeats", "1"]
NAMES = ("evaluator", "evaluator_drain", "notifier", "api")


def plans(args: argparse.Namespace) -> dict[str, tuple[str, list[str], Target]]:
    """For each profile: what it shows, the bench script and its arguments, and the process to record in it."""
    seconds = args.seconds
    # Enough load for the recording: the evaluator's ticks and the API's two phases run past its end, and the
    # notifier's queue lasts about as long at ~600 mails/s (a faster drain only leaves idle time, not in the graph).
    mails = args.mails or round(600 * (seconds + 2))
    api_seconds = max(1, math.ceil((seconds + 1) / 2))
    drain_seconds = min(seconds, 6.0)  # a queue for longer takes long to fill
    drain_ticks = round(30_000 * (drain_seconds + 1))
    return {
        "evaluator": (
            f"the evaluator service at evaluator_bench's 2 000 ticks/s, {args.alerts} alerts on 500 symbols",
            ["evaluator_bench.py", "--alerts", str(args.alerts), "--seconds", str(seconds + 6), *EVALUATOR_ROW],
            # Once connected: the shard leases, the groups, then the bench's 1.2 s pause before the ticks flow.
            Target("pricealert.evaluator", "pricealert.evaluator", settle_s=2.0, seconds=seconds),
        ),
        "evaluator_drain": (
            f"the evaluator service draining {drain_ticks} queued ticks (evaluator_drain.py: the throughput row's "
            f"regime, full batches), {args.alerts // 5} alerts",
            ["evaluator_drain.py", "--alerts", str(args.alerts // 5), "--ticks", str(drain_ticks)],
            Target("pricealert.evaluator", "pricealert.evaluator", settle_s=0.5, seconds=drain_seconds),
        ),
        "notifier": (
            f"the notifier service draining notifier_bench's {mails} queued triggers into the local SMTP server",
            ["notifier_bench.py", "--mails", str(mails), "--runs", "1"],
            Target("pricealert.notifier", "pricealert.notifier", settle_s=0.5, seconds=seconds),
        ),
        "api": (
            f"the alerts API (uvicorn supervisor and workers) under api_bench's wrk run then its paced 1 000 req/s "
            f"run ({api_seconds} s each), create + list through nginx",
            ["api_bench.py", "--seconds", str(api_seconds), "--capacity-seconds", str(api_seconds), "--repeats", "1"],
            Target("pricealert.alerts serve", "wrk", settle_s=0.3, seconds=seconds, subprocesses=True),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="recording time per process")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--alerts", type=int, default=50_000, help="alerts indexed for the evaluator's profile")
    parser.add_argument("--mails", type=int, default=0, help="triggers queued for the notifier (0: from --seconds)")
    parser.add_argument("--only", default=",".join(NAMES), help="comma-separated, of " + ", ".join(NAMES))
    parser.add_argument("--no-native", dest="native", action="store_false", help="Python frames only")
    parser.add_argument("--dir", default="bench/results/profiles", help="where the SVGs go")
    parser.add_argument("--out", default="bench/results/profiles.json")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"rate": args.rate, "native": args.native, "seconds": args.seconds}
    profiles: dict[str, object] = {}
    broken = py_spy_works()
    with tempfile.TemporaryDirectory(prefix="bench-profiles-") as scratch:
        for name, (what, bench, target) in plans(args).items():
            if name not in args.only.split(","):
                continue
            if broken:
                profiles[name] = {"what": what, "error": f"py-spy cannot read processes here: {broken}"}
                continue
            print(f"== profile {name}: {what}", flush=True)
            svg = folder / f"{name}.svg"
            svg.unlink(missing_ok=True)
            command = [sys.executable, f"bench/{bench[0]}", *bench[1:], "--out", str(Path(scratch) / f"{name}.json")]
            started = time.monotonic()
            outcome = profile_command(command, target, svg, rate=args.rate, native=args.native)
            outcome["wall_seconds"] = round(time.monotonic() - started, 1)
            if "error" not in outcome and not svg.exists():
                outcome["error"] = f"py-spy wrote no graph: {outcome.get('py_spy_said')}"
            profiles[name] = {"what": what, "svg": str(svg), **outcome, **(summarize(svg) if svg.exists() else {})}
    result["profiles"] = profiles
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
