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

from alert_index_setup import BASE_PRICE, indexed_server, load_alerts_at, snapshot_name, symbol
from evaluator_bench import percentile
from spread import steady
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


async def arrivals(log: Path, *, webhook: bool, expected: set[str], within: float = 30.0) -> dict[str, float]:
    """Alert id -> when its notification arrived (mail accepted; webhook received: its webhook-id is the firing id,
    the alert id of a once alert), once every `expected` one arrived or `within` s passed."""
    arrived: dict[str, float] = {}
    deadline = time.monotonic() + within
    while not expected <= arrived.keys() and time.monotonic() < deadline:
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


def rounds_of(args: argparse.Namespace) -> int:
    """Rounds of fresh alerts one run crosses: one trade in 20 crosses one, each round one alert per symbol."""
    return max(1, int(args.rate * args.seconds / 20 / args.symbols))


FIRE_EVERY = 20  # one trade in 20 crosses a fresh alert


def crossings(args: argparse.Namespace) -> int:
    """Alerts one run crosses: one trade in FIRE_EVERY, at most one alert per symbol and round."""
    return min(rounds_of(args) * args.symbols, len(range(0, int(args.rate * args.seconds), FIRE_EVERY)))


async def publish_rounds(
    redis: RedisClient, args: argparse.Namespace, first_round: int, runs: int, *, webhook: bool
) -> None:
    """`runs` runs' alerts from round `first_round` on: round r one per symbol above every price played before round
    r (crossed by round r's trades only); only the alerts a run's trades cross, since one left unfired would be
    crossed by a later run's higher prices."""
    channel = CHANNEL if webhook else None
    rounds, fires = rounds_of(args), crossings(args)
    for run_start in range(first_round, first_round + runs * rounds, rounds):
        for r in range(run_start, run_start + rounds):
            target = BASE_PRICE + Decimal("0.6") + Decimal(r) / 5
            crossed = min(args.symbols, fires - (r - run_start) * args.symbols)
            batch = [alert(f"lat-{r}-{n}", symbol(n), target, channel) for n in range(max(0, crossed))]
            if batch:
                await publish_alerts(redis, args.shards, batch)


async def measure(
    args: argparse.Namespace,
    redis: RedisClient,
    exchange: FakeExchange,
    log: Path,
    *,
    first_round: int,
    webhook: bool,
    every_sent: set[str],
) -> dict[str, object]:
    """Play `args.rate` trades/s for `args.seconds`, one in 20 crossing a fresh alert of round `first_round` on (its
    alerts published beforehand); the latency of each crossing's notification (email, or webhook). `every_sent`: the
    alert ids crossed so far in this bench, this run's added (a notification of none of them is unexpected)."""
    rounds = rounds_of(args)
    total, fire_every = int(args.rate * args.seconds), FIRE_EVERY
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
    every_sent.update(sent)
    accepted = await arrivals(log, webhook=webhook, expected=set(sent))
    latencies = [accepted[a] - sent[a] for a in sent if a in accepted]
    last = "trigger_to_webhook" if webhook else "trigger_to_smtp"
    stages = await stage_samples(redis, args.shards, sent, accepted, last)
    what = "webhooks" if webhook else "emails"
    return {
        "offered_rate": args.rate,
        "achieved_rate": round(achieved_rate),
        f"{what}_expected": len(sent),
        f"{what}_{'received' if webhook else 'accepted'}": len(set(accepted) & set(sent)),
        "lost": len(set(sent) - set(accepted)),
        "unexpected": len(set(accepted) - every_sent),
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


def combined(runs: list[dict[str, object]]) -> dict[str, object]:
    """The runs as one: medians with each run's figures ("per_run"), counts summed over the runs, the stages of the
    median run (by p99), every run's latencies (for the plot)."""
    measured = [run for run in runs if run["latency_ms"]]
    result = steady(measured) if measured else dict(runs[0])
    for key, value in runs[0].items():
        if key.endswith(("_expected", "_accepted", "_received", "_unverified")) or key in ("lost", "unexpected"):
            result[key] = sum(int(str(run[key])) for run in runs) if isinstance(value, int) else value
    if measured:
        middle = sorted(measured, key=lambda run: run["latency_ms"]["p99"])[len(measured) // 2]  # type: ignore[index]  # a dict of figures
        result["stages_ms_p50_p99"] = middle["stages_ms_p50_p99"]
    result["latencies_ms"] = [v for run in runs for v in run["latencies_ms"]]  # type: ignore[attr-defined]  # a list
    result["runs"] = len(runs)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="of each run")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each phase; medians, min and max reported")
    parser.add_argument("--snapshots", type=Path, help="evaluator_bench.py's index snapshots: start from one")
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
    phase_started, phases = time.perf_counter(), dict[str, float]()
    snapshot = args.snapshots / snapshot_name(args.alerts, args.symbols, args.shards, 0) if args.snapshots else None
    from_snapshot = snapshot is not None and snapshot.exists()
    if from_snapshot:  # the evaluator bench's 1 M alerts, the same ones load_alerts indexes
        server, _ = await indexed_server(work / "redis", args.alerts, args.symbols, args.shards, 0, args.snapshots)
    else:
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
        if not from_snapshot:
            await load_alerts_at(server.url, args.alerts, args.symbols, args.shards)
        phases["index"] = round(time.perf_counter() - phase_started, 1)
        result: dict[str, object] = {
            "alerts": args.alerts,
            "symbols": args.symbols,
            "load_seconds": None if from_snapshot else round(time.perf_counter() - t0, 1),
            "index_from_snapshot": from_snapshot,
        }
        # Every run's alerts at once, email runs' then webhook runs' (each round above every price of the rounds
        # before it): the evaluator indexes them once, not once per run.
        rounds, every_sent = rounds_of(args), set[str]()
        email_runs = 0 if args.no_email else args.repeats
        webhook_runs = args.repeats if args.webhook else 0
        await publish_rounds(redis, args, 0, email_runs, webhook=False)
        await publish_rounds(redis, args, email_runs * rounds, webhook_runs, webhook=True)
        await asyncio.sleep(3)  # the evaluator indexes them
        phase_started = time.perf_counter()
        if email_runs:
            result.update(
                combined(
                    [
                        await measure(
                            args,
                            redis,
                            exchange,
                            accept_log,
                            first_round=r * rounds,
                            webhook=False,
                            every_sent=every_sent,
                        )
                        for r in range(email_runs)
                    ]
                )
            )
        phases["email"] = round(time.perf_counter() - phase_started, 1)
        hooks: dict[str, object] = {}
        if webhook_runs:  # the same alerts in the index; fresh targets above every price played so far
            hooks = combined(
                [
                    await measure(
                        args,
                        redis,
                        exchange,
                        received_log,
                        first_round=(email_runs + r) * rounds,
                        webhook=True,
                        every_sent=every_sent,
                    )
                    for r in range(webhook_runs)
                ]
            )
            result["webhook"] = hooks
        phases["webhook"] = round(time.perf_counter() - phase_started - phases["email"], 1)
        # The cost curve (bench/curves.py): trade → mail at each rate in turn, ascending, each on rounds above all.
        curve, next_round = [], (email_runs + webhook_runs) * rounds
        for rate in (int(r) for r in args.rates.split(",") if r):
            args.rate = rate
            await publish_rounds(redis, args, next_round, 1, webhook=False)
            await asyncio.sleep(3)  # the evaluator indexes them
            curve.append(
                await measure(
                    args, redis, exchange, accept_log, first_round=next_round, webhook=False, every_sent=every_sent
                )
            )
            next_round += rounds_of(args)
        if curve:
            result["curve"] = curve
        result["phase_seconds"] = phases
        shown = {k: v for k, v in result.items() if k not in ("latencies_ms", "per_run")}
        if hooks:
            shown["webhook"] = {k: v for k, v in hooks.items() if k not in ("latencies_ms", "per_run")}
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
