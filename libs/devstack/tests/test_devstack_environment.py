"""`make run` gives each worker its own metrics port, unless the operator chose one."""

from __future__ import annotations

import pytest

from pricealert.devstack.__main__ import SERVICES, WORKER_METRICS_PORTS, service_environment


def test_each_worker_gets_a_metrics_port_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_PORT", raising=False)
    ports = {name: service_environment(name, {"REDIS_URL": "redis://x"}).get("METRICS_PORT") for name in SERVICES}
    assert {name: port for name, port in ports.items() if port} == {
        name: str(port) for name, port in WORKER_METRICS_PORTS.items()}
    assert len(set(WORKER_METRICS_PORTS.values())) == len(WORKER_METRICS_PORTS) == 3


def test_an_operators_metrics_port_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "9200")
    assert service_environment("evaluator", {"REDIS_URL": "redis://x"}) == {"REDIS_URL": "redis://x"}
