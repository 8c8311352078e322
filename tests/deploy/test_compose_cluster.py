"""deploy/compose.cluster.yaml, the override that runs the system on a 6-node Redis Cluster, read as YAML.

Docker Compose itself checks the merged files in test_compose_validates.py; this module checks what they say:
six nodes from compose.yaml's Redis script with cluster mode and AOF, a one-shot that makes 3 masters with a
replica each, the users set on every node, every service on the cluster as its own user, one SHARDS for all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from compose_testkit import SERVICES, SETTINGS, compose_environment, env_names
from deploy_testkit import (
    CLUSTER_FILE,
    DUMMY_SECRETS,
    interpolate,
    load_compose,
    referenced_variables,
    service_environment,
)

from pricealert.auth.keys import generate_key
from pricealert.auth.rootkey import ensure_root_key, write_public_key
from pricealert.common.shards import DEFAULT_SHARDS

OVERRIDE = load_compose(CLUSTER_FILE)
CLUSTER_SERVICES: dict[str, dict[str, Any]] = OVERRIDE["services"]
NODES = ("redis", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6")
# Every process that talks to Redis: compose.yaml's services with a Redis URL, and the migrate one-shot.
ON_REDIS = sorted(name for name in [*SETTINGS, "migrate"] if compose_environment(name).get("REDIS_URL"))
SHARDED_WORKERS = ("ingest", "evaluator", "notifier")


def merged_environment(name: str) -> dict[str, str | None]:
    """Service `name`'s environment with compose.yaml and the override merged (the override wins), interpolated."""
    extra = CLUSTER_SERVICES.get(name, {}).get("environment") or {}
    return compose_environment(name) | service_environment({"environment": extra}, DUMMY_SECRETS)


def node_script(name: str) -> str:
    command = CLUSTER_SERVICES[name]["command"]
    assert command[:2] == ["sh", "-c"] and command[3] == "redis", name
    return str(command[2])


def test_six_nodes_each_announcing_its_own_name() -> None:
    nodes = {name for name, service in CLUSTER_SERVICES.items() if "cluster-enabled" in str(service.get("command"))}
    assert nodes == set(NODES)
    for name in NODES:
        assert CLUSTER_SERVICES[name]["command"][4:] == ["--cluster-announce-hostname", name]
        assert node_script(name) == node_script("redis")


def test_each_node_is_compose_yamls_redis_in_cluster_mode_with_aof() -> None:
    base = str(SERVICES["redis"]["command"][2])
    script = node_script("redis")
    before_exec = base.split("exec redis-server", 1)[0]
    assert script.startswith(before_exec)  # the same ACL file: admin from REDIS_PASSWORD, `default` off
    assert re.sub(r"\\\n\s*", "", base.split("exec ", 1)[1]).replace('"$$@"', "").strip() in re.sub(
        r"\\\n\s*", "", script
    )
    for option in (
        "--appendonly yes",
        "--appendfsync everysec",
        "--maxmemory-policy noeviction",
        "--cluster-enabled yes",
        "--cluster-config-file nodes.conf",
        '--masterauth "$$REDIS_PASSWORD"',  # a replica logs in to its master as the admin
    ):
        assert option in script, option
    for name in NODES[1:]:
        node = CLUSTER_SERVICES[name]
        assert node["image"] == SERVICES["redis"]["image"]
        assert node["environment"] == SERVICES["redis"]["environment"]
        assert node["healthcheck"] == SERVICES["redis"]["healthcheck"]
        assert node["restart"] == "unless-stopped"
        [volume] = node["volumes"]
        assert volume == f"{name}-data:/data" and f"{name}-data" in OVERRIDE["volumes"]
    assert CLUSTER_SERVICES["redis"]["volumes"] == SERVICES["redis"]["volumes"]


def test_a_one_shot_makes_three_masters_with_a_replica_each() -> None:
    create = CLUSTER_SERVICES["redis-cluster-create"]
    script = create["command"][-1]
    assert create["restart"] == "no"
    assert create["environment"]["REDIS_NODES"].split() == list(NODES)
    assert "--cluster create $$addresses --cluster-replicas 1 --cluster-yes" in script
    assert len(NODES) // (1 + 1) == 3  # masters: every node but one replica per master
    assert "cluster_state:ok" in script  # a no-op when the cluster exists; done when it serves every slot
    assert create["depends_on"] == {name: {"condition": "service_healthy"} for name in NODES}
    assert interpolate(create["environment"]["REDISCLI_AUTH"], DUMMY_SECRETS) == DUMMY_SECRETS["REDIS_PASSWORD"]


def test_the_users_are_set_on_every_node() -> None:
    migrate = CLUSTER_SERVICES["migrate"]["command"][-1]
    assert migrate.startswith(SERVICES["migrate"]["command"][-1].split("&& pricealert redis acl apply")[0])
    loop = re.search(r"for node in ([\w\s-]+);", migrate)
    assert loop is not None and loop[1].split() == list(NODES)
    assert "@$$node:6379/0" in migrate and "pricealert redis acl apply --disable-default" in migrate


@pytest.mark.parametrize("name", ON_REDIS)
def test_every_service_reaches_every_node_as_its_own_user(name: str) -> None:
    environment = merged_environment(name)
    seeds = [urlsplit(url) for url in (environment["REDIS_CLUSTER_URL"] or "").split(",")]
    own = urlsplit(environment["REDIS_URL"] or "")
    assert [seed.hostname for seed in seeds] == list(NODES)
    assert (seeds[0].username, seeds[0].password) == (own.username, own.password)  # the first seed's login serves all
    assert all(seed.port == 6379 for seed in seeds)
    assert CLUSTER_SERVICES[name]["depends_on"] == {
        "redis-cluster-create": {"condition": "service_completed_successfully"}
    }


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_process_gets_one_shard_count(name: str) -> None:
    assert merged_environment(name)["SHARDS"] == str(DEFAULT_SHARDS)
    assert "SHARDS" in env_names(SETTINGS[name])
    assert "SHARDS" not in (CLUSTER_SERVICES.get(name, {}).get("environment") or {})  # from compose.yaml's common env


def test_the_sharded_workers_run_two_replicas_without_fixed_names() -> None:
    for name in SHARDED_WORKERS:
        assert CLUSTER_SERVICES[name]["deploy"] == {"replicas": 2}
        assert "hostname" not in CLUSTER_SERVICES[name] and "container_name" not in CLUSTER_SERVICES[name]
    assert not any("ports" in service for service in CLUSTER_SERVICES.values())


def test_no_secret_has_a_default_and_each_is_a_known_one() -> None:
    text = CLUSTER_FILE.read_text()
    assert referenced_variables(text) <= set(DUMMY_SECRETS) | {"SHARDS"}
    for variable in DUMMY_SECRETS:
        for rest in re.split(r"\$\{" + variable + r"\b", text)[1:]:
            assert rest.startswith(":?"), variable


@pytest.mark.parametrize("name", [n for n in ON_REDIS if n in SETTINGS])
def test_the_cluster_environment_makes_valid_production_settings(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    environment = {k: v for k, v in merged_environment(name).items() if v is not None}
    if name == "auth":
        generate_key(tmp_path / "keys")
        ensure_root_key(tmp_path / "keys", allow_generate=True)
        environment["AUTH_KEY_DIR"] = str(tmp_path / "keys")
    if name in {"alerts", "alerts-worker"}:
        root, _ = ensure_root_key(tmp_path / "keys", allow_generate=True)
        write_public_key(root, tmp_path / "token-root" / "public.pem")
        environment["TOKEN_ROOT_PUBLIC_KEY_FILE"] = str(tmp_path / "token-root" / "public.pem")
    for variable in env_names(SETTINGS[name]) | set(environment):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)

    settings: Any = SETTINGS[name]()

    assert settings.redis_cluster_url == environment["REDIS_CLUSTER_URL"]
    assert settings.shards == DEFAULT_SHARDS
