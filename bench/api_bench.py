"""REST API benchmark through the gateway: create + list alerts, against real Postgres and Redis.

Two measurements, each repeated: the capacity, with wrk sending as fast as the system answers (32 connections:
its latencies are those of a saturated system), and the latency at the SPEC's load, with an open-loop client
sending 1 000 requests a second on a fixed schedule (paced_load.py). auth, alerts (API and worker) and the gateway
run as their own processes. Run: `uv run python bench/api_bench.py [--seconds 10] [--connections 32] [--rate 1000]
[--gateway nginx|dev] [--direct]` (needs `wrk`: `apt-get install wrk`).

The gateway is nginx with deploy/nginx's configuration, as compose runs it (the development gateway then
serves only /docs, /openapi.json and /readyz, as in compose), or with `--gateway dev` the development
gateway for everything (a Python proxy, much slower). `--direct` bypasses any gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from paced_load import paced, summary
from spread import per_run

from pricealert.common import names
from pricealert.common.events import CatalogSnapshot, CatalogSymbol
from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR
from pricealert.common.logging import configure_logging
from pricealert.common.publisher import publish
from pricealert.common.redisconn import connect_to
from pricealert.devstack.ports import free_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import PostgresServer, RedisServer, create_database, temp_dir
from pricealert.testsupport.nginx import Nginx, nginx_binary

WRK_SCRIPT = """
tokens = {%(tokens)s}
counter = 0
request = function()
  counter = counter + 1
  -- Each user creates an alert, then lists their own alerts: every list answers a full page.
  local token = tokens[(math.floor((counter - 1) / 2) %% #tokens) + 1]
  local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  if counter %% 2 == 0 then
    return wrk.format("GET", "/alerts?page=1&page_size=20", headers)
  end
  local body = '{"symbol":"btcusdt","target_price":"' .. (100000 + counter %% 1000) .. '","condition":"above"}'
  return wrk.format("POST", "/alerts", headers, body)
end
"""

# What every wrk run here reports (wrk_run parses it): requests, errors, p50/p95/p99/max ms, duration in µs.
WRK_REPORT = """
errors = 0
response = function(status, headers, body)
  if status >= 400 then errors = errors + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f %.3f %d\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.duration))
end
"""


def wrk_run(script: Path, target: str, connections: int, seconds: int) -> dict[str, float | int]:
    """One wrk run (2 threads, `connections` connections, `seconds` s) with a script ending in WRK_REPORT."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), target]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests, errors = int(match[1]), int(match[2])
    duration_s = int(match[7]) / 1e6
    non_2xx = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    return {
        "requests_per_s": round(requests / duration_s),
        "errors": errors + non_2xx,
        "p50_ms": float(match[3]),
        "p95_ms": float(match[4]),
        "p99_ms": float(match[5]),
        "max_ms": float(match[6]),
    }


def nginx_gateway(prefix: Path, port: int, *, auth: int, alerts: int, docs: int) -> Nginx:
    """nginx with deploy/nginx's template on `port`, as compose runs it, in front of these local ports."""
    upstreams = {
        "AUTH_UPSTREAM": f"127.0.0.1:{auth}",
        "ALERTS_UPSTREAM": f"127.0.0.1:{alerts}",
        "DOCS_UPSTREAM": f"127.0.0.1:{docs}",
    }
    return Nginx(
        nginx_binary() or "nginx",  # the callers check first
        prefix,
        port,
        upstreams,
        workers="auto",  # one per core, as the nginx image's own nginx.conf
        connections=4096,
        log_level="warn",
    )


async def prepare(base_url: str, users: int) -> list[str]:
    """Register and log in `users` users; returns their access tokens."""
    tokens = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for n in range(users):
            credentials = {"email": f"bench{n}@example.com", "password": "bench-password-1"}
            (await client.post("/auth/register", json=credentials)).raise_for_status()
            tokens.append((await client.post("/auth/login", json=credentials)).json()["access_token"])
        # the first create waits for the catalog cache; do it before the clock starts
        response = await client.post(
            "/alerts",
            json={"symbol": "BTCUSDT", "target_price": "1", "condition": "above"},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
        response.raise_for_status()
    return tokens


def paced_request(tokens: list[str], host: str) -> Callable[[int], bytes]:
    """The i-th request of the paced run: the same mix as the wrk script (a user creates, then lists)."""

    def request(i: int) -> bytes:
        token = tokens[(i // 2) % len(tokens)]
        if i % 2:
            return (
                f"GET /alerts?page=1&page_size=20 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        body = f'{{"symbol":"btcusdt","target_price":"{100000 + i % 1000}","condition":"above"}}'
        return (
            f"POST /alerts HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()

    return request


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5, help="of each paced run")
    # shorter than the paced runs: 5 repeats of both at 5 s made this row a minute
    parser.add_argument("--capacity-seconds", type=int, default=3, help="of each wrk (capacity) run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000, help="requests/s of the paced (open-loop) runs")
    parser.add_argument("--rates", default="", help="then one paced run at each of these req/s (500,2000)")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="bench/results/api.json")
    parser.add_argument("--direct", action="store_true", help="bypass the gateway (to measure its cost)")
    parser.add_argument(
        "--gateway",
        choices=["nginx", "dev"],
        default="nginx",
        help="nginx with deploy/nginx's configuration (as compose runs it) or the development gateway",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("ALERTS_WORKERS", "2")),
        help="uvicorn worker processes of the alerts service (ALERTS_WORKERS)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    if args.gateway == "nginx" and nginx_binary() is None:
        raise SystemExit("nginx is needed for --gateway nginx: apt-get install nginx (or use --gateway dev)")
    work = temp_dir("bench-api-")
    redis_server = RedisServer(work / "redis").start()
    postgres = PostgresServer(work / "pg").start()
    database_url = create_database(postgres.url(), "bench")
    redis = connect_to(redis_server.url)
    symbols = [
        CatalogSymbol(
            symbol="BTCUSDT", min_price=Decimal("0.01"), max_price=Decimal("1000000"), tick_size=Decimal("0.01")
        )
    ]
    await publish(redis, names.SYMBOL_CATALOG, CatalogSnapshot.build(symbols, datetime.now(UTC)))
    auth_port, alerts_port, dev_port, port = free_port(), free_port(), free_port(), free_port()
    env = {
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": database_url,
        "AUTH_KEY_DIR": str(work / "keys"),
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(work / "keys" / ROOT_PUBLIC_KEY_IN_KEY_DIR),
        "AUTH_BCRYPT_ROUNDS": "4",
        "AUTH_PORT": str(auth_port),
        "ALERTS_PORT": str(alerts_port),
        "PORT": str(dev_port if args.gateway == "nginx" else port),
        "AUTH_URL": f"http://127.0.0.1:{auth_port}",
        "ALERTS_URL": f"http://127.0.0.1:{alerts_port}",
        "LOG_LEVEL": "WARNING",
        "ALERTS_MAX_ACTIVE_PER_USER": "100000",
        "ALERTS_WORKERS": str(args.workers),
        # Every bench user registers from 127.0.0.1. They stay unverified: this bench sends no mail, and
        # an unverified account creates and lists alerts like any other.
        "AUTH_REGISTER_MAX_PER_ADDRESS": "100000",
    }
    services = [
        ServiceProcess(name, env, log_path=work / f"{name}.log").start()
        for name in ("auth", "alerts", "alerts-worker", "gateway")
    ]
    nginx = None
    try:
        if args.gateway == "nginx":
            nginx = nginx_gateway(work / "nginx", port, auth=auth_port, alerts=alerts_port, docs=dev_port).start()
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{base_url}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.3)
        tokens = await prepare(base_url, args.users)
        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT % {"tokens": ", ".join(f'"{t}"' for t in tokens)} + WRK_REPORT)
        target = f"http://127.0.0.1:{alerts_port}" if args.direct else base_url
        in_order = [wrk_run(script, target, args.connections, args.capacity_seconds) for _ in range(args.repeats)]
        runs = sorted(in_order, key=lambda r: r["requests_per_s"])
        median = runs[len(runs) // 2]
        target_port = alerts_port if args.direct else port
        paced_runs = []
        for _ in range(args.repeats):
            outcome = await paced(
                "127.0.0.1",
                target_port,
                paced_request(tokens, f"127.0.0.1:{target_port}"),
                rate=args.rate,
                seconds=args.seconds,
            )
            paced_runs.append(summary(outcome, args.rate, args.seconds))
        # Each run's figures, in run order (wrk's run i and the paced run i), behind the medians.
        each = per_run(
            [{"median": wrk, "paced": {"median": one}} for wrk, one in zip(in_order, paced_runs, strict=True)]
        )
        paced_runs.sort(key=lambda r: r["p99_ms"])
        paced_median = paced_runs[len(paced_runs) // 2]
        curve = []  # the cost curve (bench/curves.py): p99 against offered load
        for rate in (float(r) for r in args.rates.split(",") if r):
            request = paced_request(tokens, f"127.0.0.1:{target_port}")
            outcome = await paced("127.0.0.1", target_port, request, rate=rate, seconds=args.seconds)
            curve.append(summary(outcome, rate, args.seconds))
        gateway = (
            "none (--direct)"
            if args.direct
            else ("nginx (deploy/nginx)" if args.gateway == "nginx" else "pricealert.devstack.gateway")
        )
        result = {
            "gateway": gateway,
            "database": "postgres",
            "connections": args.connections,
            "alerts_workers": args.workers,
            "runs": runs,
            "median": median,
            "paced": {"rate": args.rate, "runs": paced_runs, "median": paced_median},
            "per_run": each,
            **({"curve": curve} if curve else {}),
        }
        print(json.dumps(result, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    finally:
        if nginx is not None:
            nginx.stop()
        for service in services:
            service.stop()
        await redis.aclose()
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
