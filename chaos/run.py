"""`make chaos`: every fault scenario on its own stack, then the hostile-input run; writes chaos/results/.

Run from the repository root: `uv run python -m chaos [--runs N] [--only a,b] [--no-hostile] [--no-faults]
[--no-cluster] [--hostile-databases sqlite,postgres] [--report-only]`. Each scenario runs N times (default 3), each
on a fresh stack; chaos/accounting.py aggregates its runs. The cluster scenarios (chaos/cluster_faults.py) start a
Redis Cluster of 3 masters + 3 replicas from the bundled redis-server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python chaos/run.py`: make the package importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos.accounting import aggregate
from chaos.cluster_faults import CLUSTER_SCENARIOS
from chaos.hostile import run_hostile
from chaos.poison import POISON_SCENARIOS
from chaos.postfix_faults import POSTFIX_SCENARIOS
from chaos.postgres_faults import POSTGRES_SCENARIOS
from chaos.report import recurring_row, row, webhook_row, write_report
from chaos.report_summary import overview_row
from chaos.runner import run_scenario
from chaos.scenarios import SCENARIOS
from chaos.slowness import SLOWNESS_SCENARIOS
from chaos.webhook_faults import WEBHOOK_SCENARIOS
from pricealert.common.logging import configure_logging
from pricealert.devstack.servers import temp_dir

RESULTS = Path("chaos/results")


def say(text: str) -> None:
    """Progress on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def run(
    only: set[str] | None, faults: bool, hostile: list[str], keep: bool, cluster: bool = True, runs: int = 3
) -> None:
    """Run each chosen scenario `runs` times, one after the other, then the hostile run, and write the report."""
    began = time.monotonic()
    root = temp_dir("chaos-")
    say(f"chaos: working directory {root}")
    scenarios: list[dict[str, Any]] = []
    chosen = [
        *SCENARIOS,
        *WEBHOOK_SCENARIOS,
        *POISON_SCENARIOS,
        *POSTFIX_SCENARIOS,
        *SLOWNESS_SCENARIOS,
        *POSTGRES_SCENARIOS,
        *(CLUSTER_SCENARIOS if cluster else []),
    ]
    for scenario in chosen if faults else []:
        if only and scenario.name not in only:
            continue
        results = []
        for n in range(1, runs + 1):
            say(f"== {scenario.name} (run {n}/{runs}): {scenario.what}")
            result = await run_scenario(scenario, root / f"run-{n}") | {"run": n}
            results.append(result)
            say(row(result) + f"  ({result['wall_s']} s)")
            if "recurring_pass" in result:
                say("recurring: " + recurring_row(result))
            if "webhooks_pass" in result:
                say("webhooks: " + webhook_row(result))
            if not keep and result.get("pass"):  # a failed run's logs stay until the end of the chaos run
                shutil.rmtree(root / f"run-{n}" / scenario.name, ignore_errors=True)
        scenarios.append(aggregate(results) | {"results": results})
        say(overview_row(scenarios[-1]))
    hostile_results: list[dict[str, Any]] = []
    for database in hostile:
        say(f"== hostile input on {database}: schemathesis and hand-written requests against the gateway")
        hostile_result = await run_hostile(root / f"hostile-{database}", database)
        hostile_results.append(hostile_result)
        say(
            json.dumps(
                {
                    k: {kk: vv for kk, vv in v.items() if kk != "findings"} if isinstance(v, dict) else v
                    for k, v in hostile_result.items()
                }
            )
        )
    write_report(scenarios, hostile_results, RESULTS, time.monotonic() - began)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    say((RESULTS / "chaos.md").read_text())


def rewrite_report() -> None:
    """chaos.md again from the last run's chaos.json (after a change to the report's wording)."""
    data = json.loads((RESULTS / "chaos.json").read_text())
    write_report(data["scenarios"], data["hostile"], RESULTS, data["wall_seconds"])
    say(f"chaos: rewrote {RESULTS / 'chaos.md'} from {RESULTS / 'chaos.json'}")


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="python -m chaos")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--runs", type=int, default=3, help="how many times each scenario runs (fresh stacks)")
    parser.add_argument("--no-hostile", action="store_true", help="skip the hostile-input runs")
    parser.add_argument(
        "--hostile-databases",
        default="sqlite,postgres",
        help="the databases the hostile-input run is repeated on (comma-separated)",
    )
    parser.add_argument("--no-faults", action="store_true", help="only the hostile-input run")
    parser.add_argument("--no-cluster", action="store_true", help="skip the scenarios on a Redis Cluster")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (service logs)")
    parser.add_argument(
        "--report-only", action="store_true", help="run nothing: write chaos.md again from chaos/results/chaos.json"
    )
    args = parser.parse_args()
    if args.report_only:
        rewrite_report()
        return
    configure_logging(service="chaos", level="WARNING")
    only = {n.strip() for n in args.only.split(",") if n.strip()} or None
    databases = [] if args.no_hostile else [d.strip() for d in args.hostile_databases.split(",") if d.strip()]
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    asyncio.run(run(only, not args.no_faults, databases, args.keep, not args.no_cluster, args.runs))


if __name__ == "__main__":
    main()
