"""Webhook benchmark: signed webhook deliveries per second from one notifier process to a local receiver.

Run: `uv run python bench/webhook_bench.py [--deliveries 3000] [--runs 1] [--concurrency 8]` (fresh bundled Redis
and receiver per run). `--concurrency` sets NOTIFIER_WEBHOOK_CONCURRENCY and NOTIFIER_WEBHOOK_PER_HOST alike: the one
receiver stands for many users' endpoints, and 8 is the default cap per host (beyond it deliveries wait, then retry as
"busy"; more connections also cost the notifier more CPU per request in httpcore's pool).
As the email benchmark, the triggers are queued first, each naming one webhook channel of the registry; the receiver
(chaos/webhook_receiver.py, its own process) verifies every signature with the `standardwebhooks` package and logs
each delivery's receive time. Reports medians: deliveries/s including the
notifier's start-up, deliveries/s once it runs (first to last receive), and the notifier's CPU time per delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from notifier_bench import cpu_seconds, results_written, symbol_of

from pricealert.common.channels import ChannelKind, ChannelSecret, ChannelSpec, ChannelStatus, put_channel
from pricealert.common.events import Condition, Trigger, now_ms
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import RedisClient, connect
from pricealert.common.shards import shard_of
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import RedisServer, temp_dir

ROOT = Path(__file__).resolve().parents[1]
CHANNEL = "bench-hook"
BENCH_USER = "bench-user"  # the channel's owner: the notifier delivers a user's firings on their own channels only
SECRET = "whsec_" + base64.b64encode(b"pricealert-bench-webhook-secret!").decode()
# The notifier's settings for a receiver on 127.0.0.1.
WEBHOOK_ENV = {"CHANNELS_ALLOW_PRIVATE_TARGETS": "true"}


def start_receiver(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The webhook receiver in its own process (it competes with the notifier for the cores, as a real one would)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "chaos.webhook_receiver", "--port", str(port), "--secret", SECRET]
    receiver = subprocess.Popen([*command, "--log", str(log)], stdout=subprocess.PIPE, env=env, cwd=ROOT)
    wait_for_port(port)
    return receiver, port


def stop_receiver(receiver: subprocess.Popen[bytes]) -> dict[str, int]:
    """SIGTERM the receiver; its counts (received, distinct_ids, unverified)."""
    receiver.send_signal(signal.SIGTERM)
    counts: dict[str, int] = json.loads(receiver.communicate(timeout=60)[0])
    return counts


def receive_times(log: Path) -> dict[str, float]:
    """webhook-id -> the epoch ms it first arrived, from the receiver's log."""
    first: dict[str, float] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            at, webhook_id, _ = line.split(" ", 2)
            first.setdefault(webhook_id, float(at))
    return first


def unverified(log: Path) -> int:
    """How many deliveries in the receiver's log had no valid signature."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(1 for line in lines if line.split(" ", 3)[2] != "1")


async def register_channel(redis: RedisClient, port: int) -> None:
    """The webhook channel every benchmark trigger names, in the registry (as the alerts service writes it)."""
    spec = ChannelSpec(
        id=CHANNEL,
        user_id=BENCH_USER,
        kind=ChannelKind.WEBHOOK,
        target=f"http://127.0.0.1:{port}/hook",
        status=ChannelStatus.ACTIVE,
        version=1,
        secrets=(ChannelSecret(secret=SECRET),),
    )
    await put_channel(redis, spec)


def trigger(n: int, symbol: str) -> dict[str, str]:
    return Trigger(
        trigger_id=f"t{n}",
        alert_id=f"t{n}",
        user_id=BENCH_USER,
        email=f"user{n}@example.com",
        symbol=symbol,
        condition=Condition.ABOVE,
        target_price=Decimal("100000"),
        name="bench",
        price=Decimal("100001"),
        trade_id=n,
        exchange_time=now_ms(),
        tick_received_at=now_ms(),
        fired_at=now_ms(),
        channels=CHANNEL,
    ).to_fields()


async def one_run(deliveries: int, concurrency: int, shards: int, symbols: int) -> dict[str, object]:
    """Fresh Redis and receiver, `deliveries` triggers queued, then one notifier process drains them."""
    work = temp_dir("bench-webhook-")
    server = RedisServer(work / "redis").start()
    log = work / "received.log"
    receiver, port = start_receiver(log)
    redis = connect(server.url)
    notifier = None
    counts: dict[str, int] = {}
    try:
        await register_channel(redis, port)
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(deliveries):
                symbol = symbol_of(n, symbols)
                pipe.xadd(Trigger.stream_of(shard_of(symbol, shards)), trigger(n, symbol))  # type: ignore[arg-type]  # redis-py's field mapping type is invariant in its values
            await pipe.execute()
        started = time.perf_counter()
        env = {
            "REDIS_URL": server.url,
            "LOG_LEVEL": "WARNING",
            "CONSUMER_NAME": "bench",
            "NOTIFIER_WEBHOOK_CONCURRENCY": str(concurrency),
            # The one receiver stands for the endpoints of many users: as many requests to it as the notifier has
            # webhooks in flight (with the default cap of 8 per host, the rest would wait, then retry as "busy").
            "NOTIFIER_WEBHOOK_PER_HOST": str(concurrency),
            "SHARDS": str(shards),
            **WEBHOOK_ENV,
        }
        notifier = ServiceProcess("notifier", env, log_path=work / "notifier.log").start()
        assert notifier.process is not None
        steady: tuple[int, float] | None = None  # (deliveries so far, notifier CPU seconds) once they flow
        deadline = time.monotonic() + 120
        while (done := len(receive_times(log))) < deliveries and time.monotonic() < deadline:
            if steady is None and done > 0:
                steady = (done, cpu_seconds(notifier.process.pid))
            await asyncio.sleep(0.05)
        results = await results_written(redis, shards)
        elapsed = time.perf_counter() - started
        cpu = {"notifier": cpu_seconds(notifier.process.pid), "receiver": cpu_seconds(receiver.pid)}
        notifier.stop()
        counts = stop_receiver(receiver)
        times = sorted(receive_times(log).values())
        span_s = (times[-1] - times[0]) / 1000 if len(times) > 1 else 0.0
        return {
            "results_written": results,  # one per attempt: more than the deliveries if some were retried
            "seconds_including_start": round(elapsed, 2),
            "deliveries_per_s": round(len(times) / elapsed),
            "deliveries_per_s_after_start": round((len(times) - 1) / max(span_s, 1e-3)),
            "notifier_cpu_ms_per_delivery_after_start": round(
                (cpu["notifier"] - steady[1]) * 1000 / max(1, deliveries - steady[0]), 3
            )
            if steady
            else None,
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "receiver": counts,
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        if notifier is not None:
            notifier.stop()
        await redis.aclose()
        if receiver.poll() is None:
            receiver.kill()
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=8, help="NOTIFIER_WEBHOOK_CONCURRENCY and _PER_HOST")
    parser.add_argument("--shards", type=int, default=16, help="SHARDS of the notifier")
    parser.add_argument("--symbols", type=int, default=16, help="spread the triggers over this many symbols")
    parser.add_argument("--runs", type=int, default=5, help="repeat on fresh servers; medians are reported")
    parser.add_argument("--out", default="bench/results/webhook.json")
    args = parser.parse_args()
    runs = [await one_run(args.deliveries, args.concurrency, args.shards, args.symbols) for _ in range(args.runs)]
    whole = {"received": args.deliveries, "distinct_ids": args.deliveries, "unverified": 0}
    result = {
        "deliveries": args.deliveries,
        "concurrency": args.concurrency,
        "shards": args.shards,
        "symbols": args.symbols,
        "runs": len(runs),
        "deliveries_per_s": statistics.median(int(str(r["deliveries_per_s"])) for r in runs),
        "deliveries_per_s_after_start": statistics.median(int(str(r["deliveries_per_s_after_start"])) for r in runs),
        "notifier_cpu_ms_per_delivery": statistics.median(
            float(str(r["notifier_cpu_ms_per_delivery_after_start"] or 0)) for r in runs
        ),
        # Each trigger's webhook arrived exactly once and verified.
        "every_delivery_once_and_verified": all(r["receiver"] == whole for r in runs),
        "each_run": runs,
        # Each run's figures, in run order, behind the medians (the report's min and max).
        "per_run": {
            key: [r[f"{key}_after_start" if key.startswith("notifier_cpu") else key] for r in runs]
            for key in ("deliveries_per_s", "deliveries_per_s_after_start", "notifier_cpu_ms_per_delivery")
        },
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
