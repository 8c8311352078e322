"""`make soak`: one stack under a steady moderate load for a bounded time, sampled, judged for growth that does not
level off, and checked by an oracle at the end; writes chaos/results/soak.md, soak.json and soak_*.png.

Run from the repository root: `uv run python -m chaos.soak [--minutes 30] [--sample-s 60] [--results DIR]`
(SOAK_MINUTES sets the default length). Exits 1 when the growth judge or the oracle fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # `python chaos/soak.py`: make the package importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos.soak_judge import Sampler, judge_all
from chaos.soak_report import write_soak_report
from chaos.soak_workload import SoakLoad, soak_oracle
from chaos.stack import ChaosStack
from chaos.workload import Market, register_users
from pricealert.common.publisher import MAXLEN_DIVISOR_VARIABLE
from pricealert.common.tasks import cancel_and_wait
from pricealert.devstack.servers import temp_dir
from pricealert.testsupport.polling import holds_within

USERS = 12
MAXLEN_DIVISOR = 1000  # every stream reaches its (divided) cap within the first minutes of the load
SOAK_ENV = {
    MAXLEN_DIVISOR_VARIABLE: str(MAXLEN_DIVISOR),
    "AUTH_ACCESS_TOKEN_TTL_S": str(24 * 3600),  # the workload's users log in once
    # Ingest's window of trade ids (default 200 000, ~17 min of this load) fills in the first two minutes too.
    "INGEST_DEDUPE_WINDOW": "20000",
}
SETTLE_S = 60.0  # after the load: every alert still to fire fires, every mail arrives


def say(text: str) -> None:
    """Progress on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def soak(minutes: float, sample_s: float, trades_per_s: float, alerts_per_s: float, root: Path) -> dict[str, Any]:
    """Run the load for `minutes` on a fresh stack in `root`, sampling every `sample_s`; the whole result."""
    began = time.monotonic()
    stack = ChaosStack(root / "soak", extra_env=dict(SOAK_ENV))
    stack.directory.mkdir(parents=True, exist_ok=True)
    config = {"minutes": minutes, "sample_s": sample_s, "trades_per_s": trades_per_s, "alerts_per_s": alerts_per_s}
    result: dict[str, Any] = {"config": config | {"stream_maxlen_divisor": MAXLEN_DIVISOR}}
    sampler: Sampler | None = None
    background: list[asyncio.Task[Any]] = []
    market: Market | None = None
    try:
        await stack.start()
        say(f"soak: stack ready in {time.monotonic() - began:.0f} s ({stack.directory})")
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            users = await register_users(client, USERS, stack.smtp)
            load = SoakLoad(stack, client, users, alerts_per_s=alerts_per_s)
            market = Market(stack.exchange, trades_per_s=trades_per_s)
            market.start()
            sampler = Sampler(stack, sample_s)
            stop_load, stop_all = asyncio.Event(), asyncio.Event()
            background += [
                asyncio.create_task(sampler.run(stop_all)),
                asyncio.create_task(load.swing(market, stop_all)),
                asyncio.create_task(load.watch(stop_all)),
                asyncio.create_task(load.create(stop_load)),
            ]
            await progress(minutes * 60, sampler, load)
            stop_load.set()
            await load.drain()

            async def settled() -> bool:
                await load.read_new()
                return load.settled()

            result["settled"] = await holds_within(settled, within=SETTLE_S, every=0.5)
            await sampler.sample_now()
            stop_all.set()
            await asyncio.gather(*background, return_exceptions=True)
            await market.stop()
            await load.drain()
            result["trades_played"] = market.played
            result["oracle"] = soak_oracle(load)
            result["oracle"]["pass"] = result["oracle"]["pass"] and result["settled"]
    except Exception as exc:  # the report still shows what was sampled
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await cancel_and_wait(*background)
        if market is not None:
            await market.stop()
        crashed = {name: code for name, code in stack.exit_codes().items() if code is not None}
        result["crashed_processes"] = crashed
        try:
            result["exit_codes"] = await stack.stop()
        except Exception as exc:
            result["stop_error"] = f"{type(exc).__name__}: {exc}"
    result["samples"] = sampler.samples if sampler else []
    result["sample_errors"] = sampler.errors if sampler else []
    result["verdicts"] = judge_all(result["samples"], MAXLEN_DIVISOR)
    growth_pass = bool(result["samples"]) and all(
        v.levelled for kind in result["verdicts"].values() for v in kind.values()
    )
    result["growth_pass"] = growth_pass
    result["pass"] = (
        growth_pass and bool(result.get("oracle", {}).get("pass")) and not crashed and "error" not in result
    )
    result["wall_s"] = round(time.monotonic() - began, 1)
    return result


async def progress(seconds: float, sampler: Sampler, load: SoakLoad) -> None:
    """Wait `seconds`, saying once a minute how far the load got."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(60.0, left))
        fired = sum(len(t) for t in load.triggers.values())
        say(
            f"soak: {len(load.created)} alerts created, {fired} fired, {sum(load.mails.values())} mailed, "
            f"{sum(load.deletes.values())} deleted, {len(sampler.samples)} samples; "
            f"{max(0.0, end - time.monotonic()):.0f} s left"
        )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run, write the report; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m chaos.soak")
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES") or 30))
    parser.add_argument("--sample-s", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--trades-per-s", type=float, default=200.0)
    parser.add_argument("--alerts-per-s", type=float, default=3.0)
    parser.add_argument("--results", type=Path, default=Path("chaos/results"))
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, databases)")
    args = parser.parse_args(argv)
    if args.minutes * 60 / args.sample_s < 6:
        parser.error("the growth judge needs at least 6 samples: lengthen --minutes or shorten --sample-s")
    root = temp_dir("soak-")
    say(f"soak: {args.minutes:g} min, a sample every {args.sample_s:g} s; working directory {root}")
    result = asyncio.run(soak(args.minutes, args.sample_s, args.trades_per_s, args.alerts_per_s, root))
    report = write_soak_report(result, args.results)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    say(report.read_text())
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
