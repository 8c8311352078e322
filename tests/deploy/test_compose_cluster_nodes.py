"""compose.cluster.yaml's node script, run: six local redis-servers from it become a 3 + 3 cluster with the one-shot's
`redis-cli --cluster create` line, the admin from REDIS_PASSWORD, `default` off, and replicas in sync (they log in
to their masters as the admin). Needs Redis 7 (hostname endpoints), as the compose image has."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from deploy_testkit import CLUSTER_FILE, DUMMY_SECRETS, interpolate, load_compose, service_environment

from pricealert.devstack.ports import wait_for_port
from pricealert.devstack.servers import redis_server_binary
from pricealert.testsupport.cluster import cluster_ports, redis_cli_binary

SERVICES = load_compose(CLUSTER_FILE)["services"]
NODES = ("redis", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6")
ADMIN = "pricealert-admin"


def redis_major() -> int:
    reply = subprocess.run([redis_server_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    version = next((word[2:] for word in reply.split() if word.startswith("v=")), "0")
    return int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[int]]:
    """The six nodes, each started from its compose command on a loopback port; their ports."""
    if redis_major() < 7:
        pytest.skip("the cluster nodes announce host names: Redis 7 or later")
    processes, ports = [], cluster_ports(len(NODES))
    try:
        for name, port in zip(NODES, ports, strict=True):
            shell, flag, script, argv0, *args = SERVICES[name]["command"]
            node = SERVICES["redis-2"]  # redis keeps compose.yaml's environment, the same as every other node's
            env = {k: v for k, v in service_environment(node, DUMMY_SECRETS).items() if v is not None}
            directory = tmp_path / name
            directory.mkdir()
            env["REDIS_ACL_FILE"] = str(directory / "users.acl")
            env["PATH"] = f"{Path(redis_server_binary()).parent}:{os.environ['PATH']}"
            local = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
            with (directory / "redis.log").open("ab") as log:
                processes.append(
                    subprocess.Popen(
                        [shell, flag, interpolate(script, DUMMY_SECRETS), argv0, *args, *local],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            wait_for_port(port, timeout=15)
        yield ports
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)


def admin(port: int) -> redis.Redis:
    return redis.Redis(port=port, username=ADMIN, password=DUMMY_SECRETS["REDIS_PASSWORD"], socket_timeout=5)


def cluster_state(client: redis.Redis) -> str:
    """cluster_state of CLUSTER INFO (redis-py parses the reply or not, by version)."""
    reply = client.cluster("INFO")
    if isinstance(reply, dict):
        return str(reply.get("cluster_state", ""))
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line).get("cluster_state", "").strip()


def test_the_nodes_become_three_masters_with_a_replica_each(nodes: list[int]) -> None:
    create = SERVICES["redis-cluster-create"]["command"][-1]
    line = '--user "$$REDIS_ADMIN_USER" --cluster create $$addresses --cluster-replicas 1 --cluster-yes'
    assert line in create
    addresses = [f"127.0.0.1:{port}" for port in nodes]
    options = ["--cluster-replicas", "1", "--cluster-yes"]
    created = subprocess.run(
        [redis_cli_binary(), "--user", ADMIN, "--cluster", "create", *addresses, *options],
        env={**os.environ, "REDISCLI_AUTH": DUMMY_SECRETS["REDIS_PASSWORD"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stdout + created.stderr

    deadline = time.monotonic() + 30
    while True:
        roles = []
        for port in nodes:
            with admin(port) as client:
                replication = client.info("replication")
                ok = cluster_state(client) == "ok"
                roles.append((replication["role"], replication.get("master_link_status", "up"), ok))
        if all(link == "up" and ok for _, link, ok in roles) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(role for role, _, _ in roles) == ["master"] * 3 + ["slave"] * 3
    assert all(link == "up" for _, link, _ in roles), roles  # replicas logged in to their masters as the admin
    assert all(ok for _, _, ok in roles), roles
    with admin(nodes[0]) as client:
        assert client.config_get("appendonly")["appendonly"] == "yes"
        shards = str(client.execute_command("CLUSTER", "SHARDS"))
        assert all(f"'{name}'" in shards for name in NODES)  # clients are sent to the node names
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=nodes[0], socket_timeout=5).ping()  # `default` is off
