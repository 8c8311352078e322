"""Notifier benchmark: emails per second from one notifier process to a local SMTP server.

Run: `uv run python bench/notifier_bench.py [--mails 5000] [--runs 3] [--shards 16] [--symbols 1]` (fresh bundled
Redis and local SMTP server per run). The triggers are spread over `--symbols` symbols, each on its shard's stream.
Reports medians: emails/s including the notifier's start-up, emails/s once it runs, and the notifier's CPU time per
email (the figure least disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from redis.asyncio import Redis

from pricealert.common.events import Condition, NotificationResult, Trigger, now_ms
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import connect
from pricealert.common.shards import shard_of
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import RedisServer, temp_dir


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def symbol_of(n: int, symbols: int) -> str:
    """The symbol of trigger `n` when the triggers are spread over `symbols` symbols (BTCUSDT alone if 1)."""
    return "BTCUSDT" if symbols == 1 else f"SYM{n % symbols}USDT"


def trigger(n: int, symbol: str) -> dict[str, str]:
    return Trigger(
        trigger_id=f"t{n}",
        alert_id=f"t{n}",
        user_id="u",
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
    ).to_fields()


async def results_written(redis: Redis, shards: int) -> int:
    """How many results every shard's results stream holds, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            pipe.xlen(NotificationResult.stream_of(shard))
        return sum(await pipe.execute())


def entry_ms(entry_id: object) -> int:
    """The ms timestamp of a stream entry id."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(text.split("-")[0])


async def result_span_ms(redis: Redis, shards: int) -> int:
    """From the first to the last result event over every shard (entry ids are ms timestamps)."""
    firsts: list[int] = []
    lasts: list[int] = []
    for shard in range(shards):
        stream = NotificationResult.stream_of(shard)
        first, last = await redis.xrange(stream, count=1), await redis.xrevrange(stream, count=1)
        if first and last:
            firsts.append(entry_ms(first[0][0]))
            lasts.append(entry_ms(last[0][0]))
    return max(lasts) - min(firsts)


async def one_run(mails: int, concurrency: int, shards: int, symbols: int) -> dict[str, object]:
    """Fresh Redis and SMTP server, `mails` triggers queued, then one notifier process drains them."""
    server = RedisServer(temp_dir("bench-redis-")).start()
    smtp_port = free_port()
    # The SMTP server runs in its own process, so it competes with the notifier as a real one would.
    smtp = subprocess.Popen(
        [sys.executable, "-m", "pricealert.devstack.smtp", "--port", str(smtp_port)], stdout=subprocess.PIPE
    )
    wait_for_port(smtp_port)
    redis = connect(server.url)
    notifier = None
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(mails):
                symbol = symbol_of(n, symbols)
                stream = Trigger.stream_of(shard_of(symbol, shards))
                pipe.xadd(stream, trigger(n, symbol))  # type: ignore[arg-type]  # redis-py's field mapping type is invariant in its values
            await pipe.execute()
        started = time.perf_counter()
        notifier = ServiceProcess(
            "notifier",
            {
                "REDIS_URL": server.url,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp_port),
                "LOG_LEVEL": "WARNING",
                "CONSUMER_NAME": "bench",
                "NOTIFIER_CONCURRENCY": str(concurrency),
                "SHARDS": str(shards),
            },
        ).start()
        assert notifier.process is not None
        steady: tuple[int, float] | None = None  # (results so far, notifier CPU seconds) once mails flow
        while (done := await results_written(redis, shards)) < mails:
            if steady is None and done > 0:
                steady = (done, cpu_seconds(notifier.process.pid))
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = {"notifier": cpu_seconds(notifier.process.pid), "smtp_server": cpu_seconds(smtp.pid)}
        span_ms = await result_span_ms(redis, shards)  # the rate after start-up
        notifier.stop()
        smtp.send_signal(signal.SIGTERM)
        counts = json.loads(smtp.communicate(timeout=180)[0])
        return {
            "seconds_including_start": round(elapsed, 2),
            "emails_per_s": round(mails / elapsed),
            "emails_per_s_after_start": round((mails - 1) / max(span_ms / 1000, 1e-3)),
            "notifier_cpu_ms_per_email_after_start": round(
                (cpu["notifier"] - steady[1]) * 1000 / (mails - steady[0]), 3
            )
            if steady
            else None,
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "smtp": counts,
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        if notifier is not None:
            notifier.stop()
        await redis.aclose()
        if smtp.poll() is None:
            smtp.kill()
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--shards", type=int, default=16, help="SHARDS of the notifier")
    parser.add_argument("--symbols", type=int, default=1, help="spread the triggers over this many symbols")
    parser.add_argument("--runs", type=int, default=5, help="repeat on fresh servers; medians are reported")
    parser.add_argument("--out", default="bench/results/notifier.json")
    args = parser.parse_args()
    runs = [await one_run(args.mails, args.concurrency, args.shards, args.symbols) for _ in range(args.runs)]
    lost = [r["smtp"] for r in runs if r["smtp"] != {"accepted": args.mails, "distinct_message_ids": args.mails}]
    result = {
        "mails": args.mails,
        "concurrency": args.concurrency,
        "shards": args.shards,
        "symbols": args.symbols,
        "runs": len(runs),
        # Median over runs; "including start" counts the notifier process's start-up (imports, connections).
        "emails_per_s": statistics.median(int(str(r["emails_per_s"])) for r in runs),
        "emails_per_s_after_start": statistics.median(int(str(r["emails_per_s_after_start"])) for r in runs),
        "notifier_cpu_ms_per_email": statistics.median(
            float(str(r["notifier_cpu_ms_per_email_after_start"])) for r in runs
        ),
        "every_mail_accepted_once": not lost,
        "each_run": runs,
        # Each run's figures, in run order, behind the medians (the report's min and max).
        "per_run": {
            key: [r[f"{key}_after_start" if key.startswith("notifier_cpu") else key] for r in runs]
            for key in ("emails_per_s", "emails_per_s_after_start", "notifier_cpu_ms_per_email")
        },
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
