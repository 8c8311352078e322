"""End-to-end benchmark: trade sent by the fake exchange -> email accepted by the SMTP server.

ingest, evaluator and notifier run as their own processes; the SMTP server too; the fake exchange runs
here and plays 2 000 trades/s over 500 symbols while 1 000 000 alerts sit in the index. One trade in
20 crosses a freshly set alert, so each such trade yields one email whose latency is measured.
Run: `uv run python bench/e2e_bench.py [--alerts 1000000] [--rate 2000] [--seconds 10]`.
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
import uuid
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from evaluator_bench import BASE_PRICE, load_alerts, percentile, symbol

from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType, Condition, utc_now
from pricealert.common.logging import configure_logging
from pricealert.common.publisher import publish_many
from pricealert.common.redisconn import RedisClient, connect
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.devstack.fakeexchange import FakeExchange, default_symbols
from pricealert.devstack.fakeexchange.symbols import synthetic_symbols
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import RedisServer, temp_dir


def alert(alert_id: str, sym: str, target: Decimal) -> AlertEvent:
    return AlertEvent(
        type=AlertEventType.CREATED,
        event_id=str(uuid.uuid4()),
        alert_id=alert_id,
        user_id=str(uuid.uuid4()),
        email=f"{alert_id}@example.com",
        symbol=sym,
        condition=Condition.ABOVE,
        target_price=target,
        occurred_at=utc_now(),
    )


async def publish_alerts(redis: RedisClient, shards: int, events: Iterable[AlertEvent]) -> None:
    """Publish alert events, each to its symbol's shard stream (as the alerts service's relay does)."""
    by_shard: dict[int, list[AlertEvent]] = defaultdict(list)
    for event in events:
        by_shard[shard_of(event.symbol, shards)].append(event)
    for shard, batch in by_shard.items():
        await publish_many(redis, names.alert_events_stream(shard), batch)


async def read_triggers(redis: RedisClient, shards: int) -> list[dict[bytes, bytes]]:
    """The fields of every trigger of every shard."""
    rows: list[dict[bytes, bytes]] = []
    for shard in range(shards):
        rows.extend(fields for _, fields in await redis.xrange(names.triggers_stream(shard)))
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS)
    parser.add_argument("--out", default="bench/results/e2e.json")
    args = parser.parse_args()
    work = temp_dir("bench-e2e-")
    server = RedisServer(work / "redis").start()
    redis = connect(server.url)
    smtp_port, accept_log = free_port(), work / "accepted.log"
    smtp = subprocess.Popen(
        [sys.executable, "-m", "pricealert.devstack.smtp", "--port", str(smtp_port), "--accept-log", str(accept_log)],
        stdout=subprocess.PIPE,
    )
    wait_for_port(smtp_port)
    exchange = FakeExchange(default_symbols() + synthetic_symbols(args.symbols), ping_interval=None)
    await exchange.start()
    env = {
        "REDIS_URL": server.url,
        "LOG_LEVEL": "WARNING",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "BINANCE_WS_URL": exchange.ws_url,
        "BINANCE_REST_URL": exchange.rest_url,
        "CONSUMER_NAME": "bench",
        "SHARDS": str(args.shards),
    }
    services = [
        ServiceProcess(name, env, log_path=work / f"{name}.log").start() for name in ("ingest", "evaluator", "notifier")
    ]
    try:
        # One far-away alert per symbol makes ingest subscribe to all of them.
        anchors = [alert(f"anchor-{n}", symbol(n), BASE_PRICE * 100) for n in range(args.symbols)]
        await publish_alerts(redis, args.shards, anchors)
        deadline = time.monotonic() + 60
        while len(exchange.subscriptions()) < args.symbols and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        await load_alerts(redis, args.alerts, args.symbols, args.shards)
        load_s = time.perf_counter() - t0
        rounds = max(1, int(args.rate * args.seconds / 20 / args.symbols))
        for r in range(rounds):  # round r's alerts are crossed by round r's trades only
            target = BASE_PRICE + Decimal("0.6") + Decimal(r) / 5
            await publish_alerts(
                redis, args.shards, [alert(f"lat-{r}-{n}", symbol(n), target) for n in range(args.symbols)]
            )
        await asyncio.sleep(3)  # the evaluator indexes them
        sent: dict[str, float] = {}
        total, fire_every = int(args.rate * args.seconds), 20
        started = time.perf_counter()
        fired = 0
        for n in range(total):
            delay = started + n / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if n % fire_every == 0 and fired < rounds * args.symbols:
                r, s = divmod(fired, args.symbols)
                sent[f"lat-{r}-{s}"] = time.time() * 1000
                exchange.trade(symbol(s), BASE_PRICE + Decimal("0.7") + Decimal(r) / 5)
                fired += 1
            else:
                exchange.trade(symbol(n % args.symbols), BASE_PRICE + Decimal("0.5"))
        achieved_rate = total / (time.perf_counter() - started)
        accepted: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while len(accepted) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            if accept_log.exists():
                for line in accept_log.read_text().splitlines():
                    at, message_id = line.split(" ", 1)
                    alert_id = message_id.strip("<>").split("@")[0].removeprefix("trigger.")
                    accepted.setdefault(alert_id, float(at))
        latencies = [accepted[a] - sent[a] for a in sent if a in accepted]
        stages: dict[str, list[float]] = {"trade_to_ingest": [], "ingest_to_trigger": [], "trigger_to_smtp": []}
        for fields in await read_triggers(redis, args.shards):
            alert_id = fields[b"alert_id"].decode()
            if alert_id in sent and alert_id in accepted:
                received, fired_at = int(fields[b"tick_received_at"]), int(fields[b"fired_at"])
                stages["trade_to_ingest"].append(received - sent[alert_id])
                stages["ingest_to_trigger"].append(fired_at - received)
                stages["trigger_to_smtp"].append(accepted[alert_id] - fired_at)
        result = {
            "alerts": args.alerts,
            "symbols": args.symbols,
            "offered_rate": args.rate,
            "achieved_rate": round(achieved_rate),
            "load_seconds": round(load_s, 1),
            "emails_expected": len(sent),
            "emails_accepted": len(latencies),
            "lost": len(sent) - len(latencies),
            "unexpected": len(set(accepted) - set(sent)),
            "latency_ms": {
                "p50": round(statistics.median(latencies), 2),
                "p95": round(percentile(latencies, 0.95), 2),
                "p99": round(percentile(latencies, 0.99), 2),
                "max": round(max(latencies), 2),
            },
            "stages_ms_p50_p99": {
                k: [round(statistics.median(v), 1), round(percentile(v, 0.99), 1)] for k, v in stages.items() if v
            },
            "latencies_ms": [round(v, 2) for v in latencies],
        }
        print(json.dumps({k: v for k, v in result.items() if k != "latencies_ms"}, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    finally:
        for service in services:
            service.stop()
        await exchange.stop()
        smtp.send_signal(signal.SIGTERM)
        smtp.wait(timeout=30)
        await redis.aclose()
        server.stop()


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
