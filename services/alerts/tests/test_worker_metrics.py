"""With several workers /metrics adds up every worker's values, whichever worker answers the scrape."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from alerts_testkit import TokenRoot, Tokens
from prometheus_client.multiprocess import MultiProcessCollector

from pricealert.devstack.ports import free_port, wait_for_port

pytestmark = pytest.mark.usefixtures("catalog")

CREATED = 'pricealert_alerts_changes_total{change="created"}'
POSTED = 'pricealert_alerts_http_request_duration_seconds_count{method="POST",route="/alerts",status="201"}'


def created_by_worker(directory: Path) -> dict[str, float]:
    """Alerts created so far, by the pid of the worker that created them (from each worker's own file)."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "pricealert_alerts_changes_total" and sample.labels == {"change": "created"}:
                    counts[path.stem.removeprefix("counter_")] = sample.value
    return counts


def metrics_directories(parent: Path) -> list[Path]:
    return list(parent.glob("pricealert-alerts-metrics-*"))


def sample(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{series} missing from:\n{text}"
    return float(found[1])


async def test_metrics_add_up_across_workers(
    postgres_url: str, redis_url: str, tokens: Tokens, token_root: TokenRoot, tmp_path: Path
) -> None:
    port = free_port()
    # The supervisor makes its metrics directory under TMPDIR: here, where the test can look into it.
    env = {
        **os.environ,
        "ALERTS_DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "ENV": "test",
        "LOG_LEVEL": "WARNING",
        "ALERTS_PORT": str(port),
        "ALERTS_WORKERS": "2",
        "TMPDIR": str(tmp_path),
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(token_root.public_key_file),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "pricealert.alerts"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_for_port, port, timeout=60)
        [directory] = metrics_directories(tmp_path)

        async def create(n: int) -> int:
            # A connection of its own, so that either worker may accept it.
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                response = await client.post(
                    "/alerts", json={"symbol": "BTCUSDT", "target_price": str(n + 1)}, headers=tokens.headers("u1")
                )
                return response.status_code

        created = 0
        deadline = time.monotonic() + 30
        while len(created_by_worker(directory)) < 2 and time.monotonic() < deadline:
            statuses = await asyncio.gather(*(create(created + i) for i in range(10)))
            assert statuses == [201] * 10
            created += 10
        by_worker = created_by_worker(directory)
        assert len(by_worker) == 2 and sum(by_worker.values()) == created, by_worker
        assert all(0 < n < created for n in by_worker.values()), by_worker
        for _ in range(8):
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                text = (await client.get("/metrics")).text
            assert sample(text, CREATED) == created
            assert sample(text, POSTED) == created
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
        assert metrics_directories(tmp_path) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
