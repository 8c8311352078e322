"""The floors under every latency: one Redis stream hop, one SMTP accept, one loopback WebSocket frame, one signed
webhook POST to the local receiver; and (issue 21) the read and SMTP accept ceilings (ceilings.py), the HTTP hop
(http_hop.py) and the composite trade → mail floor, the sum of 2 hops, 1 frame and 1 accept p99s of this run.

Run: `uv run python bench/floors.py` (prints JSON; `make bench` folds it into the report).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from ceilings import composite_floor, read_ceiling, smtp_ceiling
from floor_stats import summary
from http_hop import http_hop
from spread import steady
from standardwebhooks.webhooks import Webhook
from webhook_bench import SECRET, start_receiver, stop_receiver
from websockets.asyncio.client import connect as ws_connect

from pricealert.common.redisconn import connect
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.servers import RedisServer, temp_dir

ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1]), compression=None):
        await asyncio.Future()
asyncio.run(main())
"""


async def redis_hop(count: int) -> dict[str, float]:
    """XADD on one connection -> the entry returned by a blocked XREADGROUP on another."""
    server = RedisServer(temp_dir("floor-redis-")).start()
    writer, reader = connect(server.url), connect(server.url)
    await writer.xgroup_create("floor", "g", id="$", mkstream=True)
    samples = []
    try:
        for _ in range(count):
            read: asyncio.Future[Any] = asyncio.ensure_future(
                reader.xreadgroup("g", "c", {"floor": ">"}, count=1, block=1000)
            )
            await asyncio.sleep(0.001)  # let the read block first
            started = time.perf_counter()
            await writer.xadd("floor", {"t": "1"})
            await read
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        await writer.aclose()
        await reader.aclose()
        server.stop()
    return summary(samples)


async def smtp_accept(count: int) -> dict[str, float]:
    """One mail sent over an open connection until the local SMTP server (its own process) accepts it."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pricealert.devstack.smtp", "--port", str(port)], stdout=subprocess.DEVNULL
    )
    wait_for_port(port)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    message = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: floor\r\n\r\nfloor\r\n"
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            await client.sendmail("a@example.com", ["b@example.com"], message)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        await client.quit()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    return summary(samples)


async def websocket_frame(count: int) -> dict[str, float]:
    """Half the round trip of a small frame to an echo server in its own process."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)])
    wait_for_port(port)
    samples = []
    try:
        async with ws_connect(f"ws://127.0.0.1:{port}", compression=None, proxy=None) as ws:
            for _ in range(count):
                started = time.perf_counter()
                await ws.send('{"e":"trade","p":"100.00000000"}')
                await ws.recv()
                samples.append((time.perf_counter() - started) * 1000 / 2)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return summary(samples)


async def webhook_post(count: int) -> dict[str, float]:
    """One signed POST over a kept-alive connection until the receiver (its own process) answers, signing included."""
    receiver, port = start_receiver(temp_dir("floor-webhook-") / "received.log")
    signer = Webhook(SECRET)
    samples = []
    try:
        async with httpx.AsyncClient() as client:
            for n in range(count):
                started = time.perf_counter()
                body = b'{"type":"alert.fired","firing_id":"f%d"}' % n
                now = datetime.now(tz=UTC)
                headers = {
                    "webhook-id": f"f{n}",
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": signer.sign(f"f{n}", now, body),
                    "content-type": "application/json",
                }
                (await client.post(f"http://127.0.0.1:{port}/floor", content=body, headers=headers)).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        stop_receiver(receiver)
    return summary(samples)


async def one_run(count: int, smtp_mails: int, read: dict[str, Any]) -> dict[str, Any]:
    """One run of every floor but the HTTP hop (its runs are its own), and the composite of its p99s."""
    run: dict[str, Any] = {
        "redis_stream_hop_ms": await redis_hop(count),
        "smtp_accept_ms": await smtp_accept(count // 4),
        "websocket_frame_ms": await websocket_frame(count),
        "webhook_post_ms": await webhook_post(count // 4),
        # The ceilings (issue 21): the evaluator's and the notifier's bounds.
        "read_ceiling": read,
        "smtp_accept_ceiling": await smtp_ceiling(smtp_mails),
    }
    run["trade_to_mail_floor_ms"] = composite_floor(run)
    return run


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000, help="samples of each latency floor per run")
    parser.add_argument("--read-entries", type=int, default=200_000, help="entries of the read ceiling (each run)")
    parser.add_argument("--smtp-mails", type=int, default=5000, help="mails of each SMTP ceiling run (as notifier's)")
    parser.add_argument("--seconds", type=int, default=5, help="of each paced HTTP hop run (as api_bench's)")
    parser.add_argument("--capacity-seconds", type=int, default=3, help="of each wrk HTTP hop run (as api_bench's)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of every floor; medians, min and max reported")
    parser.add_argument("--out", default="bench/results/floors.json")
    args = parser.parse_args()
    phases: dict[str, float] = {}
    started = time.monotonic()
    reads = await read_ceiling(args.read_entries, runs=args.repeats)
    phases["read_ceiling"] = time.monotonic() - started
    runs = []
    for read in reads:
        runs.append(await one_run(args.count, args.smtp_mails, read))
    phases["other_floors"] = time.monotonic() - started - phases["read_ceiling"]
    try:
        hop = await http_hop(args.seconds, args.repeats, capacity_seconds=args.capacity_seconds)
    except TimeoutError as error:  # the other floors stand without it
        hop = {"error": str(error)}
    phases["http_hop"] = time.monotonic() - started - sum(phases.values())
    if "each_run" in hop:  # the HTTP hop's runs as the other floors': capacity and paced figures of run i
        for run, hop_run in zip(runs, hop["each_run"], strict=True):
            run["http_hop"] = hop_run
    result = steady(runs)
    if "http_hop" in result:
        # Medians figure by figure over the runs; the runs themselves in run order.
        result["http_hop"] |= {k: v for k, v in hop.items() if k not in ("median", "paced", "each_run")}
        result["http_hop"]["paced"]["runs"] = hop["paced"]["runs"]
    else:
        result["http_hop"] = hop
    result["repeats"] = args.repeats
    result["phase_seconds"] = {k: round(v, 1) for k, v in phases.items()}
    print(json.dumps({k: v for k, v in result.items() if k != "per_run"}, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
