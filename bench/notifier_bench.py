"""Notifier benchmark: emails per second from one notifier process to a local SMTP server.

Run: `uv run python bench/notifier_bench.py [--mails 5000]` (fresh bundled Redis and local SMTP server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from pricealert.common import names
from pricealert.common.events import Condition, Trigger, now_ms
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import connect
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import RedisServer, temp_dir


def trigger(n: int) -> dict[str, str]:
    return Trigger(trigger_id=f"t{n}", alert_id=f"t{n}", user_id="u", email=f"user{n}@example.com",
                   symbol="BTCUSDT", condition=Condition.ABOVE, target_price=Decimal("100000"), name="bench",
                   price=Decimal("100001"), trade_id=n, exchange_time=now_ms(), tick_received_at=now_ms(),
                   fired_at=now_ms()).to_fields()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default="bench/results/notifier.json")
    args = parser.parse_args()
    server = RedisServer(temp_dir("bench-redis-")).start()
    smtp_port = free_port()
    # The SMTP server runs in its own process, so it competes with the notifier as a real one would.
    smtp = subprocess.Popen([sys.executable, "-m", "pricealert.devstack.smtp", "--port", str(smtp_port)],
                            stdout=subprocess.PIPE)
    wait_for_port(smtp_port)
    redis = connect(server.url)
    notifier = None
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(args.mails):
                pipe.xadd(names.TRIGGERS, trigger(n))  # type: ignore[arg-type]
            await pipe.execute()
        started = time.perf_counter()
        notifier = ServiceProcess("notifier", {
            "REDIS_URL": server.url, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "LOG_LEVEL": "WARNING",
            "CONSUMER_NAME": "bench", "NOTIFIER_CONCURRENCY": str(args.concurrency)}).start()
        while await redis.xlen(names.NOTIFICATION_RESULTS) < args.mails:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        notifier.stop()
        smtp.send_signal(signal.SIGTERM)
        counts = json.loads(smtp.communicate(timeout=30)[0])
        result = {"mails": args.mails, "seconds_including_start": round(elapsed, 2),
                  "emails_per_s": round(args.mails / elapsed), "smtp": counts, "concurrency": args.concurrency}
        print(json.dumps(result, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    finally:
        if notifier is not None:
            notifier.stop()
        await redis.aclose()
        if smtp.poll() is None:
            smtp.kill()
        server.stop()


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
