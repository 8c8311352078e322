"""One fresh stack per scenario: Redis (AOF; or a Redis Cluster of 3 masters + 3 replicas), SMTP, the fake exchange
and every service as its own process."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chaos.proxy import ProxyThread
from chaos.webhook_receiver import WebhookReceiver
from pricealert.common import names
from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient, connect_to
from pricealert.common.scripts import SHEBANG_VARIABLE
from pricealert.common.shards import DEFAULT_SHARDS
from pricealert.devstack.fakeexchange import FakeExchange, default_symbols
from pricealert.devstack.ports import free_port
from pricealert.devstack.postfix import PostfixServer
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import PostgresServer, RedisServer, redis_server_binary
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.cluster import RedisClusterNodes
from pricealert.testsupport.pgfaults import durable_database

APIS = ("auth", "alerts", "gateway")  # the processes without a heartbeat (every other one is a worker)
HEARTBEAT_SERVICE = {"alerts-worker": "alerts"}  # the alerts worker beats as the alerts service

# Small idle times and timeouts so that recovery after a fault takes seconds, not the production minutes.
CHAOS_ENV = {
    "EVALUATOR_RECLAIM_IDLE_MS": "2000",
    "NOTIFIER_RECLAIM_IDLE_MS": "2000",
    "ALERTS_RECLAIM_IDLE_MS": "2000",
    "INGEST_WATCHDOG_S": "3",
    "INGEST_WATCHDOG_MAX_S": "6",
    "INGEST_RECONNECT_MAX_DELAY_S": "2",
    "NOTIFIER_SEND_TIMEOUT_S": "5",
    "SMTP_TIMEOUT_S": "5",
    "NOTIFIER_BACKOFF_MAX_S": "5",
    "NOTIFIER_CONCURRENCY": "8",
    "AUTH_BCRYPT_ROUNDS": "4",
    "LOG_LEVEL": "INFO",
    "ENV": "test",
    # Every workload user registers from 127.0.0.1 (and verifies through the mailbox, as users would).
    "AUTH_REGISTER_MAX_PER_ADDRESS": "1000",
}


def redis_major() -> int:
    """The major version of the redis-server the stack runs (0 if it cannot tell)."""
    reply = subprocess.run([redis_server_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    version = next((word[2:] for word in reply.split() if word.startswith("v=")), "0").split(".")[0]
    return int(version) if version.isdigit() else 0


def stack_environment(
    directory: Path,
    *,
    redis_url: str,
    smtp_port: int,
    exchange: FakeExchange,
    redis_cluster_url: str = "",
    shards: int = DEFAULT_SHARDS,
) -> dict[str, str]:
    """Environment that points every service at this scenario's servers (SQLite files in `directory`)."""
    auth_port, alerts_port = free_port(), free_port()
    return {
        **CHAOS_ENV,
        "REDIS_URL": redis_url,
        "REDIS_CLUSTER_URL": redis_cluster_url,
        "SHARDS": str(shards),
        # Seven interpreters importing FastAPI/SQLAlchemy from source cost ~5 s of CPU each on every start.
        "PYTHONDONTWRITEBYTECODE": "",
        "AUTH_DATABASE_URL": f"sqlite:///{directory / 'auth.db'}",
        "ALERTS_DATABASE_URL": f"sqlite:///{directory / 'alerts.db'}",
        "AUTH_KEY_DIR": str(directory / "keys"),
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(directory / "keys" / ROOT_PUBLIC_KEY_IN_KEY_DIR),
        "AUTH_PORT": str(auth_port),
        "ALERTS_PORT": str(alerts_port),
        "AUTH_URL": f"http://127.0.0.1:{auth_port}",
        "ALERTS_URL": f"http://127.0.0.1:{alerts_port}",
        "PORT": str(free_port()),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_TLS": "none",
        "BINANCE_WS_URL": exchange.ws_url,
        "BINANCE_REST_URL": exchange.rest_url,
    }


@dataclass
class ChaosStack:
    """The servers and service processes of one scenario, with the handles the faults need."""

    directory: Path
    evaluators: int = 1
    notifiers: int = 1
    ingests: int = 1
    shards: int = DEFAULT_SHARDS
    cluster: bool = False  # a Redis Cluster of 3 masters, each with a replica, instead of one Redis
    extra_env: dict[str, str] = field(default_factory=dict)
    # "sqlite" (files in the directory) or "postgres" (a server of the stack's own, one database per service)
    database: str = "sqlite"
    api_errors: list[str] = field(default_factory=list)  # 5xx answers the oracle's reads got
    redis_server: RedisServer | None = None
    cluster_nodes: RedisClusterNodes | None = None
    mail_server: str = "aiosmtpd"  # or "postfix": an instance of Debian's Postfix (chaos/postfix_faults.py)
    refused_recipients: tuple[str, ...] = ()  # regexps: Postfix rejects them (550) once the users are verified
    smtp: MailboxServer | PostfixServer = field(init=False)
    exchange: FakeExchange = field(init=False)
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    redis: RedisClient = field(init=False)
    postgres: PostgresServer | None = None
    webhooks: WebhookReceiver | None = None  # the users' webhook endpoint, when the scenario has the webhook workload
    # The services reach one Redis, and SMTP, through a ChaosProxy (chaos/slowness.py); the oracle, Redis directly
    proxy_redis: bool = False
    proxy_smtp: bool = False
    redis_proxy: ProxyThread | None = None
    smtp_proxy: ProxyThread | None = None

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.env['PORT']}"

    @property
    def accept_log(self) -> Path:
        """One line per mail the SMTP server accepted: '<epoch ms> <Message-ID>'."""
        return self.directory / "accepted.log"

    def replicas(self) -> dict[str, tuple[str, str]]:
        """Process name -> (service, consumer name)."""
        names_: dict[str, tuple[str, str]] = {
            "auth": ("auth", "auth-1"),
            "alerts": ("alerts", "alerts-1"),
            "alerts-worker": ("alerts-worker", "alerts-worker-1"),
        }
        for n in range(1, self.ingests + 1):
            names_[f"ingest-{n}"] = ("ingest", f"ingest-{n}")
        for n in range(1, self.evaluators + 1):
            names_[f"evaluator-{n}"] = ("evaluator", f"evaluator-{n}")
        for n in range(1, self.notifiers + 1):
            names_[f"notifier-{n}"] = ("notifier", f"notifier-{n}")
        names_["gateway"] = ("gateway", "gateway-1")
        return names_

    async def start(self) -> None:
        """Start the servers and every process, then wait until the APIs and workers report ready."""
        redis_url, cluster_url = await asyncio.to_thread(self._start_redis)
        if self.mail_server == "postfix":
            self.smtp = await asyncio.to_thread(PostfixServer(self.directory / "postfix").start)
        else:
            self.smtp = MailboxServer(accept_log=self.accept_log).start()
        self.exchange = await FakeExchange(default_symbols()).start()
        if self.webhooks is not None:
            await self.webhooks.start()
        database_env = await asyncio.to_thread(self._database_env)
        services_redis_url, smtp_port = self._proxies(redis_url)
        self.env = (
            stack_environment(
                self.directory,
                redis_url=services_redis_url,
                smtp_port=smtp_port,
                exchange=self.exchange,
                redis_cluster_url=cluster_url,
                shards=self.shards,
            )
            | database_env
            | self.extra_env
        )
        self.redis = connect_to(redis_url, cluster_url)
        for name in self.replicas():
            self.start_process(name)
        await self.wait_ready()

    @property
    def postfix(self) -> PostfixServer:
        """The stack's Postfix instance (a scenario with mail_server="postfix")."""
        assert isinstance(self.smtp, PostfixServer), "this scenario runs on the in-house SMTP server"
        return self.smtp

    async def refuse_recipients(self) -> None:
        """Postfix rejects the `refused_recipients` from now on (called once the workload's users are verified)."""
        if self.refused_recipients:
            await asyncio.to_thread(self.postfix.set_policy, reject=list(self.refused_recipients))

    def refuses(self, email: str) -> bool:
        """Whether Postfix rejects mail to `email` by the scenario's configuration."""
        return any(re.search(p, email) for p in self.refused_recipients)

    def _proxies(self, redis_url: str) -> tuple[str, int]:
        """Start the proxies the scenario asks for; (the services' REDIS_URL, the notifier's SMTP port)."""
        if self.proxy_redis:
            assert self.redis_server is not None, "the Redis proxy stands in front of one Redis"
            self.redis_proxy = ProxyThread("127.0.0.1", self.redis_server.port)
            redis_url = f"redis://127.0.0.1:{self.redis_proxy.port}/0"
        if self.proxy_smtp:
            self.smtp_proxy = ProxyThread("127.0.0.1", self.smtp.port)
        return redis_url, self.smtp_proxy.port if self.smtp_proxy is not None else self.smtp.port

    def _start_redis(self) -> tuple[str, str]:
        """Start one Redis or the cluster; (REDIS_URL, REDIS_CLUSTER_URL: empty for one Redis)."""
        if not self.cluster:
            self.redis_server = RedisServer(self.directory / "redis", appendonly=True).start()
            return self.redis_server.url, ""
        nodes = RedisClusterNodes(self.directory / "cluster", masters=3, replicas_per_master=1)
        self.cluster_nodes = nodes
        nodes.start()
        if redis_major() >= 7:  # as the tests do: a script touching a key outside its KEYS' slot then fails
            self.extra_env.setdefault(SHEBANG_VARIABLE, "1")
        return f"redis://127.0.0.1:{nodes.nodes[0].port}/0", nodes.seeds

    def _database_env(self) -> dict[str, str]:
        """The database URLs of auth and alerts when the stack runs on Postgres (SQLite needs none extra)."""
        if self.database == "sqlite":
            return {}
        if self.database != "postgres":
            raise ValueError(f"unknown database {self.database!r}: sqlite or postgres")
        self.postgres = PostgresServer(self.directory / "postgres").start()
        return {  # commits survive a kill -9 of the server, as a deployment's do
            "AUTH_DATABASE_URL": asyncio.run(durable_database(self.postgres, "auth")),
            "ALERTS_DATABASE_URL": asyncio.run(durable_database(self.postgres, "alerts")),
        }

    def start_process(self, name: str) -> ServiceProcess:
        """Start (or restart, with the same consumer name) one process of the stack."""
        service, consumer = self.replicas()[name]
        process = ServiceProcess(
            service, {**self.env, "CONSUMER_NAME": consumer}, log_path=self.directory / f"{name}.log"
        ).start()
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL one process."""
        self.processes[name].kill()

    def pause(self, name: str, paused: bool) -> None:
        """SIGSTOP or SIGCONT one process."""
        process = self.processes[name].process
        assert process is not None
        process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def health_key(self, name: str) -> str:
        """The heartbeat key of the worker process `name`."""
        service, consumer = self.replicas()[name]
        return names.health_key(HEARTBEAT_SERVICE.get(service, service), consumer)

    async def wait_ready(self, within: float = 90.0) -> None:
        """Gateway /readyz answers 200 and every worker replica has its health key."""
        deadline = time.monotonic() + within
        health = [self.health_key(p) for p in self.replicas() if p not in APIS]
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                try:
                    ready = (await client.get(f"{self.url}/readyz")).status_code == 200
                    if ready and await self.redis.exists(*health) == len(health):
                        return
                except (httpx.TransportError, *TRANSIENT_REDIS_ERRORS):
                    pass
                await asyncio.sleep(0.3)
        raise TimeoutError(f"stack in {self.directory} not ready within {within}s: {self.exit_codes()}")

    async def wait_worker(self, name: str, since_ms: int, within: float = 60.0) -> bool:
        """Wait until a (re)started worker wrote its health key after `since_ms`."""
        key = self.health_key(name)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                value = await self.redis.get(key)
                if value is not None and int(value) > since_ms:
                    return True
            except TRANSIENT_REDIS_ERRORS:
                pass
            await asyncio.sleep(0.1)
        return False

    def exit_codes(self) -> dict[str, int | None]:
        """Exit codes of processes that ended (None: still running)."""
        return {name: p.process.poll() if p.process else None for name, p in self.processes.items()}

    async def stop(self) -> dict[str, int | None]:
        """Stop everything; returns the exit codes of the service processes."""
        for process in self.processes.values():
            if process.process is not None and process.process.poll() is None:
                process.process.send_signal(signal.SIGCONT)  # a paused process could not handle SIGTERM
        stopped = await asyncio.gather(*(asyncio.to_thread(p.stop) for p in self.processes.values()))
        codes = dict(zip(self.processes, stopped, strict=True))
        await self.exchange.stop()
        self.smtp.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        await self.redis.aclose()
        for proxy in (self.redis_proxy, self.smtp_proxy):
            if proxy is not None:
                proxy.stop()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.cluster_nodes is not None:
            self.cluster_nodes.stop()
        if self.postgres is not None:
            self.postgres.stop()
        return codes

    def log_lines(self, *needles: str, limit: int = 12) -> list[str]:
        """Log lines of every process that contain any of `needles` (for the report of a failure)."""
        found: list[str] = []
        for name in self.processes:
            path = self.directory / f"{name}.log"
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if any(n in line for n in needles):
                    found.append(f"{name}: {line.strip()[:300]}")
        return found[:limit]
