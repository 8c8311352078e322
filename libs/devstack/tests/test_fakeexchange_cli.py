"""The fake exchange's command line: serves with a random walk and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

from websockets.asyncio.client import connect

from pricealert.devstack.ports import free_port, wait_for_port


async def test_cli_serves_random_walk_and_stops_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pricealert.devstack.fakeexchange",
            "--port",
            str(port),
            "--random-walk",
            "--rate",
            "200",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await asyncio.to_thread(wait_for_port, port, timeout=20)
        async with connect(f"ws://127.0.0.1:{port}/stream?streams=btcusdt@trade") as ws:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["stream"] == "btcusdt@trade" and frame["data"]["s"] == "BTCUSDT"
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(process.communicate, timeout=10)
        assert process.returncode == 0
        assert f"ws://127.0.0.1:{port}".encode() in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
