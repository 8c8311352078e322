"""`python -m pricealert.devstack [--demo]`: the whole system on this machine, on embedded defaults.

A bundled Redis unless REDIS_URL (or REDIS_CLUSTER_URL) is set, SQLite unless DATABASE_URL is set, a local SMTP
server that keeps every mail as a file in var/mailbox unless SMTP_HOST is set, and live Binance data (or, with
--demo, the fake exchange playing a random-walk market). Every service runs as its own process.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
import structlog

from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR
from pricealert.common.logging import configure_logging
from pricealert.devstack.portcheck import PlannedPort, busy_message, held_ports
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
    parser.add_argument(
        "--var-dir", help="where data and mails go (default: VAR_DIR, else var, or var/demo with --demo)"
    )
    args = parser.parse_args(argv)
    # The demo's simulated catalog, alerts and mails never mix with a live run's.
    args.var_dir = args.var_dir or os.environ.get("VAR_DIR") or ("var/demo" if args.demo else "var")
    return args


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


def planned_ports(demo: bool) -> list[PlannedPort]:
    """Every port this run will listen on, as the environment sets them."""
    env = os.environ
    planned: list[PlannedPort] = []
    if _unset("REDIS_URL", "REDIS_CLUSTER_URL"):
        planned.append(PlannedPort(int(env.get("DEV_REDIS_PORT", "6390")), "the bundled Redis", "DEV_REDIS_PORT"))
    if _unset("SMTP_HOST"):
        planned.append(PlannedPort(int(env.get("DEV_SMTP_PORT", "1025")), "the local SMTP mailbox", "DEV_SMTP_PORT"))
    planned += [
        PlannedPort(int(env.get("PORT") or 8000), "the gateway", "PORT", env.get("HOST") or "127.0.0.1"),
        PlannedPort(
            int(env.get("AUTH_PORT") or 8101), "the auth API", "AUTH_PORT", env.get("AUTH_HOST") or "127.0.0.1"
        ),
        PlannedPort(
            int(env.get("ALERTS_PORT") or 8102), "the alerts API", "ALERTS_PORT", env.get("ALERTS_HOST") or "127.0.0.1"
        ),
    ]
    metrics_host = env.get("METRICS_HOST") or "127.0.0.1"
    if env.get("METRICS_PORT"):
        planned.append(PlannedPort(int(env["METRICS_PORT"]), "the workers' metrics", "METRICS_PORT", metrics_host))
    else:
        planned += [PlannedPort(p, f"{n}'s metrics", None, metrics_host) for n, p in WORKER_METRICS_PORTS.items()]
    if demo:
        planned.append(PlannedPort(int(env.get("DEV_EXCHANGE_PORT", "9443")), "the fake exchange", "DEV_EXCHANGE_PORT"))
    return planned


def accepting(*ports: int) -> bool:
    """Whether something accepts connections on each of the loopback ports right now."""
    for port in ports:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
    return True


def shown_path(path: str) -> str:
    """A path as a person typed it: relative to the working folder when inside it (var/mailbox), else as is."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") or not os.path.isabs(path) else relative


def banner(port: str, mailbox: str, demo: bool) -> str:
    """What a person reads once the stack is up: where the page is."""
    market = "the fake exchange's simulated market" if demo else "live Binance data"
    return (
        f"\npricealert is running on {market}: open http://localhost:{port}/ "
        f"(API docs: http://localhost:{port}/docs, mailbox: {mailbox}). Ctrl-C stops it.\n"
    )


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


def supervise(
    processes: list[ServiceProcess], stopping: list[bool], announce: Callable[[], bool] | None = None
) -> None:
    """Restart any service that exits, with a growing delay, until told to stop; `announce` until it is done."""
    delays = {p.name: 0.5 for p in processes}
    while not stopping:
        if announce is not None and announce():
            announce = None
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
    held = held_ports(planned_ports(args.demo))
    if held:  # before anything starts: one plain line, not a traceback from the first server that cannot bind
        raise SystemExit(busy_message(held))  # printed to stderr, exit code 1
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
        mailbox = str(var / "mailbox") if "SMTP_PORT" in env else "SMTP_HOST"
        api_ports = [int(port), int(os.environ.get("AUTH_PORT") or 8101), int(os.environ.get("ALERTS_PORT") or 8102)]

        def announce() -> bool:
            if not accepting(*api_ports):
                return False
            log.info(
                "devstack.started",
                page=f"http://localhost:{port}/",
                api=f"http://127.0.0.1:{port}",
                docs=f"http://127.0.0.1:{port}/docs",
                mailbox=mailbox,
                demo=args.demo,
                redis=os.environ.get("REDIS_CLUSTER_URL") or env.get("REDIS_URL", os.environ.get("REDIS_URL")),
            )
            sys.stderr.write(banner(port, shown_path(mailbox), args.demo))
            sys.stderr.flush()
            return True

        supervise(processes, stopping, announce)
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
