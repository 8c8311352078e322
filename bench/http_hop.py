"""The HTTP hop floor (issue 21): a trivial endpoint behind the APIs' nginx and uvicorn settings, under the REST
rows' load generators (api_bench.py): its capacity under wrk and its p99 at the paced rate (paced_load.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from api_bench import WRK_REPORT, nginx_gateway, wrk_run
from paced_load import paced, summary

from pricealert.devstack.ports import free_port
from pricealert.devstack.servers import temp_dir
from pricealert.testsupport.nginx import nginx_binary

APP = Path(__file__).with_name("http_hop_app.py")


def get_request(host: str) -> bytes:
    """The paced client's request: GET /alerts on a kept-alive connection."""
    return f"GET /alerts HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def start_app(port: int, workers: int) -> subprocess.Popen[bytes]:
    """The endpoint under uvicorn, in its own process(es)."""
    return subprocess.Popen([sys.executable, str(APP), "--port", str(port), "--workers", str(workers)])


def stop_app(app: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn's supervisor stops its workers), then kill if it lingers."""
    app.send_signal(signal.SIGTERM)
    try:
        app.wait(timeout=20)
    except subprocess.TimeoutExpired:
        app.kill()
        app.wait()


async def wait_ready(url: str, within: float = 60) -> None:
    """Until GET `url` answers 200."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {within} s")


async def measure(
    port: int, work: Path, *, seconds: int, capacity_seconds: int, repeats: int, rate: float, connections: int
) -> dict[str, Any]:
    """wrk's capacity and the paced p99 through the gateway on `port`, `repeats` runs of each: each run (in order)
    and, as "median" and "paced", the median run (by capacity and by paced p99)."""
    script = work / "hop.lua"
    script.write_text(WRK_REPORT)
    runs = [wrk_run(script, f"http://127.0.0.1:{port}/alerts", connections, capacity_seconds) for _ in range(repeats)]
    request = get_request(f"127.0.0.1:{port}")
    paced_runs = []
    for _ in range(repeats):
        outcome = await paced("127.0.0.1", port, lambda _: request, rate=rate, seconds=seconds)
        paced_runs.append(summary(outcome, rate, seconds))
    return {
        "connections": connections,
        "runs": runs,
        "median": sorted(runs, key=lambda r: r["requests_per_s"])[len(runs) // 2],
        "paced": {
            "rate": rate,
            "runs": paced_runs,
            "median": sorted(paced_runs, key=lambda r: r["p99_ms"])[len(runs) // 2],
        },
        "each_run": [
            {"median": wrk, "paced": {"rate": rate, "median": one}} for wrk, one in zip(runs, paced_runs, strict=True)
        ],
    }


async def http_hop(
    seconds: int = 5, repeats: int = 5, rate: float = 1000, connections: int = 32, capacity_seconds: int = 3
) -> dict[str, Any]:
    """The HTTP hop floor, with api_bench's defaults (32 wrk connections, 1 000 req/s paced, ALERTS_WORKERS)."""
    if shutil.which("wrk") is None or nginx_binary() is None:
        return {"error": "the HTTP hop needs wrk and nginx"}
    work = temp_dir("floor-http-")
    workers = int(os.environ.get("ALERTS_WORKERS", "2"))
    app_port, port = free_port(), free_port()
    app = start_app(app_port, workers)
    nginx = nginx_gateway(work / "nginx", port, auth=app_port, alerts=app_port, docs=app_port)
    try:
        await wait_ready(f"http://127.0.0.1:{app_port}/alerts")
        nginx.start()
        await wait_ready(f"http://127.0.0.1:{port}/alerts")
        result = await measure(
            port,
            work,
            seconds=seconds,
            capacity_seconds=capacity_seconds,
            repeats=repeats,
            rate=rate,
            connections=connections,
        )
    finally:
        nginx.stop()
        stop_app(app)
    return {"gateway": "nginx (deploy/nginx)", "uvicorn_workers": workers, **result}
