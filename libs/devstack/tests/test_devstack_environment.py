"""`make run` gives each worker its own metrics port unless the operator chose one, points alerts at the root key
and the links in the mails at its gateway, starts no Redis for a cluster, and reports an earlier version's data."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from pricealert.devstack.__main__ import (
    SERVICES,
    WORKER_METRICS_PORTS,
    embedded_environment,
    service_environment,
    warn_if_unsharded,
)


def test_each_worker_gets_a_metrics_port_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_PORT", raising=False)
    ports = {name: service_environment(name, {"REDIS_URL": "redis://x"}).get("METRICS_PORT") for name in SERVICES}
    assert {name: port for name, port in ports.items() if port} == {
        name: str(port) for name, port in WORKER_METRICS_PORTS.items()
    }
    assert len(set(WORKER_METRICS_PORTS.values())) == len(WORKER_METRICS_PORTS) == 4


def test_an_operators_metrics_port_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "9200")
    assert service_environment("evaluator", {"REDIS_URL": "redis://x"}) == {"REDIS_URL": "redis://x"}


def test_alerts_is_pointed_at_the_root_key_auth_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in ("REDIS_URL", "SMTP_HOST", "DATABASE_URL", "AUTH_KEY_DIR", "TOKEN_ROOT_PUBLIC_KEY_FILE"):
        monkeypatch.setenv(variable, "x" if variable in {"REDIS_URL", "SMTP_HOST", "DATABASE_URL"} else "")
    env = embedded_environment(tmp_path, demo=False, stack=[])
    assert env["TOKEN_ROOT_PUBLIC_KEY_FILE"] == str(tmp_path / "keys" / "root" / "public.pem")
    monkeypatch.setenv("AUTH_KEY_DIR", str(tmp_path / "elsewhere"))
    env = embedded_environment(tmp_path, demo=False, stack=[])
    assert env["TOKEN_ROOT_PUBLIC_KEY_FILE"] == str(tmp_path / "elsewhere" / "root" / "public.pem")


@pytest.mark.parametrize(
    ("port", "app_url", "expected"),
    [
        (None, None, "http://localhost:8000"),
        ("8123", None, "http://localhost:8123"),
        ("8123", "https://alerts.example.com", None),
    ],
)
def test_the_links_in_the_mails_point_at_the_gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, port: str | None, app_url: str | None, expected: str | None
) -> None:
    for name, value in {
        "REDIS_URL": "redis://x",
        "SMTP_HOST": "mail",
        "DATABASE_URL": "sqlite:///x.db",
        "AUTH_KEY_DIR": "keys",
        "PORT": port,
        "APP_URL": app_url,
    }.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert embedded_environment(tmp_path, demo=False, stack=[]).get("APP_URL") == expected


def test_a_cluster_url_means_no_bundled_redis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_CLUSTER_URL", "redis://node-1:6379,redis://node-2:6379")
    for name, value in {"SMTP_HOST": "mail", "DATABASE_URL": "sqlite:///x.db", "AUTH_KEY_DIR": "keys"}.items():
        monkeypatch.setenv(name, value)
    stack: list[object] = []
    env = embedded_environment(tmp_path, demo=False, stack=stack)
    assert "REDIS_URL" not in env and stack == []


async def test_an_earlier_versions_unsharded_streams_are_reported_with_the_fix(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        with capture_logs() as quiet:
            warn_if_unsharded(redis_url)
        client.xadd("pricealert:alert-events", {"type": "alert.created"})
        with capture_logs() as logs:
            warn_if_unsharded(redis_url)
    finally:
        client.close()
    assert quiet == []
    [event] = logs
    assert event["event"] == "devstack.unsharded_data" and event["streams"] == ["pricealert:alert-events"]
    assert "pricealert alerts resync" in event["fix"]
