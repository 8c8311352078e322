"""End-to-end benchmark: trade sent by the fake exchange -> email accepted by the SMTP server; with `--webhook`, then
trade -> signed webhook received by a local receiver (bench/webhook_bench.py), on the same alerts.

ingest, evaluator and notifier run as their own processes; the SMTP server too; the fake exchange runs
here and plays 2 000 trades/s over 500 symbols while 1 000 000 alerts sit in the index. One trade in
20 crosses a freshly set alert, so each such trade yields one email whose latency is measured.
Run: `uv run python bench/e2e_bench.py [--alerts 1000000] [--rate 2000] [--seconds 10] [--webhook]`.
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
from webhook_bench import (
    BENCH_USER,
    CHANNEL,
    WEBHOOK_ENV,
    receive_times,
    register_channel,
    start_receiver,
    stop_receiver,
    unverified,
)

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


def alert(alert_id: str, sym: str, target: Decimal, channels: str | None = None) -> AlertEvent:
    return AlertEvent(
        type=AlertEventType.CREATED,
        event_id=str(uuid.uuid4()),
        alert_id=alert_id,
        user_id=BENCH_USER if channels else str(uuid.uuid4()),  # a channel notifies its owner's alerts only
        email=f"{alert_id}@example.com",
        symbol=sym,
        condition=Condition.ABOVE,
        target_price=target,
        occurred_at=utc_now(),
        channels=channels,
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


def accepted_times(accept_log: Path) -> dict[str, float]:
    """Alert id -> when the SMTP server accepted its mail, from the accept log."""
    accepted: dict[str, float] = {}
    for line in accept_log.read_text().splitlines() if accept_log.exists() else []:
        at, message_id = line.split(" ", 1)
        accepted.setdefault(message_id.strip("<>").split("@")[0].removeprefix("trigger."), float(at))
    return accepted


async def arrivals(log: Path, *, webhook: bool, expected: int, within: float = 30.0) -> dict[str, float]:
    """Alert id -> when its notification arrived (mail accepted; webhook received: its webhook-id is the firing id,
    the alert id of a once alert), once `expected` arrived or `within` s passed."""
    arrived: dict[str, float] = {}
    deadline = time.monotonic() + within
    while len(arrived) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        arrived = receive_times(log) if webhook else accepted_times(log)
    return arrived


async def stage_samples(
    redis: RedisClient, shards: int, sent: dict[str, float], arrived: dict[str, float], last: str
) -> dict[str, list[float]]:
    """Each measured firing's trade -> ingest -> trigger -> arrival stages (ms)."""
    stages: dict[str, list[float]] = {"trade_to_ingest": [], "ingest_to_trigger": [], last: []}
    for fields in await read_triggers(redis, shards):
        alert_id = fields[b"alert_id"].decode()
        if alert_id in sent and alert_id in arrived:
            received, fired_at = int(fields[b"tick_received_at"]), int(fields[b"fired_at"])
            stages["trade_to_ingest"].append(received - sent[alert_id])
            stages["ingest_to_trigger"].append(fired_at - received)
            stages[last].append(arrived[alert_id] - fired_at)
    return stages


async def measure(
    args: argparse.Namespace, redis: RedisClient, exchange: FakeExchange, log: Path, *, first_round: int, webhook: bool
) -> tuple[dict[str, object], int]:
    """Play `args.rate` trades/s for `args.seconds`, one in 20 crossing a fresh alert of round `first_round` on; the
    latency of each crossing's notification (email, or webhook). Returns the figures and the next free round."""
    rounds = max(1, int(args.rate * args.seconds / 20 / args.symbols))
    channel = CHANNEL if webhook else None
    total, fire_every = int(args.rate * args.seconds), 20
    # Only alerts a trade will cross: one left unfired would be crossed by a later measure's higher prices.
    fires = min(rounds * args.symbols, len(range(0, total, fire_every)))
    for r in range(first_round, first_round + rounds):  # round r's alerts are crossed by round r's trades only
        target = BASE_PRICE + Decimal("0.6") + Decimal(r) / 5
        crossed = min(args.symbols, fires - (r - first_round) * args.symbols)
        batch = [alert(f"lat-{r}-{n}", symbol(n), target, channel) for n in range(crossed)]
        await publish_alerts(redis, args.shards, batch)
    earlier = set(receive_times(log) if webhook else accepted_times(log))  # what a measure before this one got
    await asyncio.sleep(3)  # the evaluator indexes them
    sent: dict[str, float] = {}
    started = time.perf_counter()
    fired = 0
    for n in range(total):
        delay = started + n / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if n % fire_every == 0 and fired < rounds * args.symbols:
            r, s = divmod(fired, args.symbols)
            sent[f"lat-{first_round + r}-{s}"] = time.time() * 1000
            exchange.trade(symbol(s), BASE_PRICE + Decimal("0.7") + Decimal(first_round + r) / 5)
            fired += 1
        else:
            exchange.trade(symbol(n % args.symbols), BASE_PRICE + Decimal("0.5"))
    achieved_rate = total / (time.perf_counter() - started)
    accepted = await arrivals(log, webhook=webhook, expected=len(sent))
    latencies = [accepted[a] - sent[a] for a in sent if a in accepted]
    last = "trigger_to_webhook" if webhook else "trigger_to_smtp"
    stages = await stage_samples(redis, args.shards, sent, accepted, last)
    what = "webhooks" if webhook else "emails"
    result = {
        "offered_rate": args.rate,
        "achieved_rate": round(achieved_rate),
        f"{what}_expected": len(sent),
        f"{what}_{'received' if webhook else 'accepted'}": len(set(accepted) & set(sent)),
        "lost": len(set(sent) - set(accepted)),
        "unexpected": len(set(accepted) - set(sent) - earlier),
        **({"webhooks_unverified": unverified(log)} if webhook else {}),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(max(latencies), 2),
        }
        if latencies
        else None,
        "stages_ms_p50_p99": {
            k: [round(statistics.median(v), 1), round(percentile(v, 0.99), 1)] for k, v in stages.items() if v
        },
        "latencies_ms": [round(v, 2) for v in latencies],
    }
    return result, first_round + rounds


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS)
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="then the same again with the firings delivered as webhooks to a local receiver (issue 19), on the "
        "same alerts",
    )
    parser.add_argument("--no-email", action="store_true", help="skip the email phase (with --webhook or --rates)")
    parser.add_argument("--rates", default="", help="then trade → mail at each of these trades/s in turn (1000,5000)")
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
    received_log = work / "received.log"
    receiver, receiver_port = start_receiver(received_log) if args.webhook else (None, 0)
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
        **(WEBHOOK_ENV if args.webhook else {}),
    }
    services = [
        ServiceProcess(name, env, log_path=work / f"{name}.log").start() for name in ("ingest", "evaluator", "notifier")
    ]
    try:
        if args.webhook:
            await register_channel(redis, receiver_port)
        # One far-away alert per symbol makes ingest subscribe to all of them.
        anchors = [alert(f"anchor-{n}", symbol(n), BASE_PRICE * 100) for n in range(args.symbols)]
        await publish_alerts(redis, args.shards, anchors)
        deadline = time.monotonic() + 60
        while len(exchange.subscriptions()) < args.symbols and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        await load_alerts(redis, args.alerts, args.symbols, args.shards)
        load_s = time.perf_counter() - t0
        result: dict[str, object] = {"alerts": args.alerts, "symbols": args.symbols, "load_seconds": round(load_s, 1)}
        next_round = 0
        if not args.no_email:
            email, next_round = await measure(args, redis, exchange, accept_log, first_round=0, webhook=False)
            result.update(email)
        curve = []
        for rate in (int(r) for r in args.rates.split(",") if r):  # the cost curve (bench/curves.py), ascending
            args.rate = rate
            point, next_round = await measure(args, redis, exchange, accept_log, first_round=next_round, webhook=False)
            curve.append(point)
        if curve:
            result["curve"] = curve
        hooks: dict[str, object] = {}
        if args.webhook:  # the same alerts in the index; fresh targets above every price played so far
            hooks, _ = await measure(args, redis, exchange, received_log, first_round=next_round, webhook=True)
            result["webhook"] = hooks
        shown = {k: v for k, v in result.items() if k != "latencies_ms"}
        if hooks:
            shown["webhook"] = {k: v for k, v in hooks.items() if k != "latencies_ms"}
        print(json.dumps(shown, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    finally:
        for service in services:
            service.stop()
        await exchange.stop()
        smtp.send_signal(signal.SIGTERM)
        smtp.wait(timeout=30)
        if receiver is not None:
            stop_receiver(receiver)
        await redis.aclose()
        server.stop()


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
