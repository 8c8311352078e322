"""`python -m pricealert.devstack [--demo]`: the whole system on this machine, on embedded defaults.

A bundled Redis unless REDIS_URL (or REDIS_CLUSTER_URL) is set, SQLite unless DATABASE_URL is set, a local SMTP
server that keeps every mail as a file in var/mailbox unless SMTP_HOST is set, and live Binance data (or, with
--demo, the fake exchange playing a random-walk market). Every service runs as its own process.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

import redis
import structlog

from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR
from pricealert.common.logging import configure_logging
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import RedisServer
from pricealert.devstack.smtp import MailboxServer

log = structlog.get_logger()
SERVICES = ["auth", "alerts", "alerts-worker", "ingest", "evaluator", "notifier", "gateway"]
# Each worker's /metrics on a port of its own: four processes on one host cannot share METRICS_PORT.
WORKER_METRICS_PORTS = {"ingest": 9101, "evaluator": 9102, "notifier": 9103, "alerts-worker": 9104}
# Streams of the versions before shards: data left in var/redis by one of them is not read any more.
UNSHARDED_STREAMS = ("pricealert:ticks", "pricealert:alert-events", "pricealert:triggers")


def service_environment(name: str, env: dict[str, str]) -> dict[str, str]:
    """`env`, plus the worker's own metrics port unless the operator chose METRICS_PORT."""
    port = WORKER_METRICS_PORTS.get(name)
    if port is None or "METRICS_PORT" in os.environ:
        return env
    return {**env, "METRICS_PORT": str(port)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m pricealert.devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demo", action="store_true", help="use the fake exchange's simulated market")
    parser.add_argument("--var-dir", default=os.environ.get("VAR_DIR", "var"), help="where data and mails go")
    return parser.parse_args(argv)


def _unset(*names: str) -> bool:
    return not any(os.environ.get(n) for n in names)


def embedded_environment(var: Path, demo: bool, stack: list[object]) -> dict[str, str]:
    """Start what the environment does not name, and return the variables that point the services at it."""
    env: dict[str, str] = {}
    if _unset("REDIS_URL", "REDIS_CLUSTER_URL"):
        server = RedisServer(var / "redis", port=int(os.environ.get("DEV_REDIS_PORT", "6390")), appendonly=True)
        stack.append(server.start())
        env["REDIS_URL"] = server.url
        warn_if_unsharded(server.url)
    if _unset("SMTP_HOST"):
        mailbox = MailboxServer(folder=var / "mailbox", port=int(os.environ.get("DEV_SMTP_PORT", "1025")))
        stack.append(mailbox.start())
        env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(mailbox.port), SMTP_TLS="none")
    if _unset("DATABASE_URL", "AUTH_DATABASE_URL"):
        env["AUTH_DATABASE_URL"] = f"sqlite:///{var / 'auth.db'}"
    if _unset("DATABASE_URL", "ALERTS_DATABASE_URL"):
        env["ALERTS_DATABASE_URL"] = f"sqlite:///{var / 'alerts.db'}"
    if _unset("AUTH_KEY_DIR"):
        env["AUTH_KEY_DIR"] = str(var / "keys")
    if _unset("TOKEN_ROOT_PUBLIC_KEY_FILE"):
        # Auth writes the root's public half into its key folder on first start; alerts reads it from there.
        key_dir = Path(env.get("AUTH_KEY_DIR") or os.environ["AUTH_KEY_DIR"])
        env["TOKEN_ROOT_PUBLIC_KEY_FILE"] = str(key_dir / ROOT_PUBLIC_KEY_IN_KEY_DIR)
    if _unset("APP_URL"):  # the links in the mails (verify the address, manage alerts) point at this gateway
        env["APP_URL"] = f"http://localhost:{os.environ.get('PORT') or '8000'}"
    if demo:
        port = os.environ.get("DEV_EXCHANGE_PORT", "9443")
        exchange = ServiceProcess("fakeexchange", env, args=["--port", port, "--random-walk"]).start()
        stack.append(exchange)
        env.update(BINANCE_WS_URL=f"ws://127.0.0.1:{port}", BINANCE_REST_URL=f"http://127.0.0.1:{port}")
    return env


def warn_if_unsharded(url: str) -> None:
    """Say how to move on when the bundled Redis holds an earlier version's unsharded streams (README "Shards")."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        found = [name for name in UNSHARDED_STREAMS if client.exists(name)]
    finally:
        client.close()
    if found:
        log.warning(
            "devstack.unsharded_data",
            streams=found,
            fix="once the stack is up: uv run pricealert alerts resync (README: Upgrading from the unsharded names)",
        )


def supervise(processes: list[ServiceProcess], stopping: list[bool]) -> None:
    """Restart any service that exits, with a growing delay, until told to stop."""
    delays = {p.name: 0.5 for p in processes}
    while not stopping:
        for process in processes:
            if not process.running and not stopping:
                code = process.process.returncode if process.process else None
                log.warning("devstack.service.exited", service=process.name, code=code, restart_in=delays[process.name])
                time.sleep(delays[process.name])
                delays[process.name] = min(delays[process.name] * 2, 10.0)
                process.start()
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    """Start everything, supervise until SIGINT/SIGTERM, then stop in reverse order."""
    args = parse_args(argv)
    configure_logging(service="devstack", level=os.environ.get("LOG_LEVEL", "INFO"))
    var = Path(args.var_dir).resolve()
    var.mkdir(parents=True, exist_ok=True)
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    stack: list[object] = []
    processes: list[ServiceProcess] = []
    try:
        env = embedded_environment(var, args.demo, stack)
        processes = [ServiceProcess(name, service_environment(name, env)).start() for name in SERVICES]
        port = os.environ.get("PORT", "8000")
        log.info(
            "devstack.started",
            api=f"http://127.0.0.1:{port}",
            docs=f"http://127.0.0.1:{port}/docs",
            mailbox=str(var / "mailbox") if "SMTP_PORT" in env else "SMTP_HOST",
            demo=args.demo,
            redis=os.environ.get("REDIS_CLUSTER_URL") or env.get("REDIS_URL", os.environ.get("REDIS_URL")),
        )
        supervise(processes, stopping)
    finally:
        log.info("devstack.stopping")
        for process in reversed(processes):
            process.stop()
        for item in reversed(stack):
            stop = getattr(item, "stop", None)
            if stop is not None:
                stop()
        log.info("devstack.stopped")


if __name__ == "__main__":
    main()
