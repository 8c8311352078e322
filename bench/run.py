"""`make bench`: every performance row of the SPEC's table, measured here, written as JSON, Markdown and a plot.

Each benchmark runs as its own command (see the other files in bench/); this runs them in turn with
the SPEC's loads, each 5 runs (medians with min and max), then writes bench/results/bench.json,
bench/results/bench.md and bench/results/e2e_latency.png. `--quick` shrinks every load, one run each, for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import machine, write_report

RESULTS = Path("bench/results")


def run(script: str, *args: str, name: str | None = None) -> dict[str, object]:
    """Run one benchmark script and return the JSON it wrote (to bench/results/<name or the script's>.json)."""
    out = RESULTS / f"{name or Path(script).stem.removesuffix('_bench')}.json"
    started = time.monotonic()
    print(f"== {script} {' '.join(args)}", flush=True)
    completed = subprocess.run([sys.executable, f"bench/{script}", *args, "--out", str(out)], check=False)
    if completed.returncode != 0:
        return {
            "error": f"{script} exited with {completed.returncode}",
            "wall_seconds": round(time.monotonic() - started, 1),
        }
    data = json.loads(out.read_text())
    data["wall_seconds"] = round(time.monotonic() - started, 1)
    print(f"== {script} took {data['wall_seconds']} s", flush=True)
    return dict(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--quick", action="store_true", help="small loads, one run each: a smoke run, not a measurement"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine_info = machine()  # the load average before any bench adds to it
    started = time.monotonic()
    alerts = "20000" if args.quick else "1000000"
    # Every row is the median of 5 runs, with min and max (issue 21); the per-run durations are as short as keeps
    # a run's figure steady (the latency rows count their samples per run, not per second).
    repeats = "1" if args.quick else "5"
    seconds = "2" if args.quick else "5"
    ticks = "50000" if args.quick else "200000"
    notifier_mails = "1000" if args.quick else "5000"
    # The 1 M alerts' index, loaded by the evaluator bench and saved; the e2e bench starts from it (this run only).
    snapshots = Path(tempfile.mkdtemp(prefix="bench-snapshots-"))
    try:
        results = {
            # The HTTP hop floor under the same load generators and durations as the api row; the SMTP ceiling
            # sends as many mails a run as the notifier bench; the read ceiling reads as many ticks as evaluator's.
            "floors": run(
                "floors.py",
                *("--count", "500" if args.quick else "1000", "--read-entries", ticks),
                *("--smtp-mails", notifier_mails, "--seconds", seconds, "--repeats", repeats),
            ),
            "evaluator": run(
                "evaluator_bench.py",
                *("--alerts", alerts, "--advanced", "0", "--ticks", ticks, "--seconds", seconds),
                *("--repeats", repeats, "--snapshots", str(snapshots)),
            ),
            # Issue 18: a fifth of the alerts percent, range or recurring ones.
            "evaluator_mixed": run(
                "evaluator_bench.py",
                *("--alerts", alerts, "--advanced", "4000" if args.quick else "200000", "--ticks", ticks),
                *("--seconds", seconds, "--repeats", repeats),
                name="evaluator_mixed",
            ),
            # Then the same alerts with the firings delivered as signed webhooks (issue 19).
            "e2e": run(
                "e2e_bench.py",
                *("--alerts", alerts, "--seconds", seconds, "--repeats", repeats, "--webhook"),
                *("--snapshots", str(snapshots)),
            ),
            "ingest": run("ingest_bench.py", "--rate", "40000", "--seconds", "3", "--repeats", repeats),
            "notifier": run("notifier_bench.py", "--mails", notifier_mails, "--runs", repeats),
            "webhook": run("webhook_bench.py", "--deliveries", "1000" if args.quick else "3000", "--runs", repeats),
            "api": run("api_bench.py", "--seconds", seconds, "--repeats", repeats),
            "cluster": run(
                "cluster_bench.py",
                *("--alerts", "20000" if args.quick else "200000", "--ticks", "20000" if args.quick else "100000"),
                *("--repeats", repeats),
            ),
            # How cost grows (issue 21): alerts 10 k .. 10 M, tick rates to saturation, REST load (about 5 minutes).
            "curves": run("curves.py", *(["--quick"] if args.quick else [])),
            # py-spy flame graphs (bench/results/profiles/) of the evaluator, notifier and alerts API under these loads.
            "profiles": run(
                "profiles.py", "--seconds", "2" if args.quick else "6", "--alerts", "5000" if args.quick else "50000"
            ),
        }
    finally:
        shutil.rmtree(snapshots, ignore_errors=True)
    total = time.monotonic() - started
    write_report(results, RESULTS, quick=args.quick, machine_info=machine_info, total_seconds=total)
    print((RESULTS / "bench.md").read_text())


if __name__ == "__main__":
    main()
