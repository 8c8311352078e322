"""A second `make run` while one runs says in one plain line which port is held and by what, and exits 1 before
starting anything; `make demo` keeps its data in var/demo; a ready stack prints where its page is."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pricealert.devstack.__main__ import (
    WORKER_METRICS_PORTS,
    accepting,
    banner,
    parse_args,
    planned_ports,
    shown_path,
    supervise,
)
from pricealert.devstack.portcheck import PlannedPort, busy_message, held_ports, holder
from pricealert.devstack.ports import free_port

PORT_VARIABLES = (
    "DEV_REDIS_PORT",
    "DEV_SMTP_PORT",
    "DEV_EXCHANGE_PORT",
    "PORT",
    "AUTH_PORT",
    "ALERTS_PORT",
    "METRICS_PORT",
)
EMBEDDED_SWITCHES = ("REDIS_URL", "REDIS_CLUSTER_URL", "SMTP_HOST", "HOST", "AUTH_HOST", "ALERTS_HOST", "METRICS_HOST")


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A socket listening on a free loopback port, as another `make run`'s server would."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_every_port_the_stack_binds_is_planned(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PORT_VARIABLES, *EMBEDDED_SWITCHES):
        monkeypatch.delenv(name, raising=False)
    demo = {p.port: p.variable for p in planned_ports(demo=True)}
    live = {p.port for p in planned_ports(demo=False)}
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    monkeypatch.setenv("SMTP_HOST", "mail.example.com")
    external = {p.port for p in planned_ports(demo=False)}

    assert demo == {
        6390: "DEV_REDIS_PORT",
        1025: "DEV_SMTP_PORT",
        8000: "PORT",
        8101: "AUTH_PORT",
        8102: "ALERTS_PORT",
        **dict.fromkeys(WORKER_METRICS_PORTS.values()),
        9443: "DEV_EXCHANGE_PORT",
    }
    assert live == set(demo) - {9443}
    assert external == live - {6390, 1025}


def test_a_held_port_is_found_with_its_holder(listening: socket.socket) -> None:
    port = int(listening.getsockname()[1])
    planned = [PlannedPort(free_port(), "the gateway", "PORT"), PlannedPort(port, "the local SMTP mailbox", "X")]

    assert held_ports(planned) == [planned[1]]
    assert (holder(port) or "").startswith(f"pid {os.getpid()} (")
    assert holder(free_port()) is None


def test_the_message_is_one_line_naming_the_others(listening: socket.socket) -> None:
    port = int(listening.getsockname()[1])
    held = [PlannedPort(port, "the local SMTP mailbox", "DEV_SMTP_PORT"), PlannedPort(8101, "the auth API", None)]

    message = busy_message(held)

    assert "\n" not in message
    assert message.startswith(f"port {port} (the local SMTP mailbox) is in use by pid {os.getpid()} (")
    assert message.endswith(
        "— is another `make run` running? Set DEV_SMTP_PORT or stop it. Also in use: 8101 (the auth API)."
    )


def test_a_second_run_exits_1_with_one_line_and_starts_nothing(listening: socket.socket, tmp_path: Path) -> None:
    held = int(listening.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if k not in EMBEDDED_SWITCHES and k != "VAR_DIR"}
    env.update({name: str(free_port()) for name in PORT_VARIABLES}, DEV_SMTP_PORT=str(held))

    result = subprocess.run(
        [sys.executable, "-m", "pricealert.devstack", "--demo", "--var-dir", str(tmp_path / "var")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"port {held} (the local SMTP mailbox) is in use by pid {os.getpid()} (")
    assert line.endswith("is another `make run` running? Set DEV_SMTP_PORT or stop it.")
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    ("argv", "var_dir", "expected"),
    [
        ([], None, "var"),
        (["--demo"], None, "var/demo"),
        (["--demo"], "/data/pa", "/data/pa"),
        ([], "/data/pa", "/data/pa"),
        (["--demo", "--var-dir", "elsewhere"], "/data/pa", "elsewhere"),
    ],
)
def test_the_demo_keeps_its_data_apart(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], var_dir: str | None, expected: str
) -> None:
    if var_dir is None:
        monkeypatch.delenv("VAR_DIR", raising=False)
    else:
        monkeypatch.setenv("VAR_DIR", var_dir)
    assert parse_args(argv).var_dir == expected


def test_the_banner_names_the_page_once_the_apis_accept(listening: socket.socket) -> None:
    port = int(listening.getsockname()[1])
    announced: list[str] = []
    stopping: list[bool] = []

    def announce() -> bool:
        if not accepting(port):
            return False
        announced.append(banner(str(port), "var/demo/mailbox", demo=True))
        stopping.append(True)
        return True

    supervise([], stopping, announce)

    assert not accepting(free_port())
    [text] = announced
    assert f"open http://localhost:{port}/ (API docs: http://localhost:{port}/docs, mailbox: var/demo/mailbox)" in text
    assert "simulated market" in text


def test_the_mailbox_is_shown_as_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert shown_path(str(tmp_path / "var" / "demo" / "mailbox")) == "var/demo/mailbox"
    assert shown_path("/elsewhere/mailbox") == "/elsewhere/mailbox"
    assert shown_path("SMTP_HOST") == "SMTP_HOST"


def test_free_port_never_hands_out_one_port_twice() -> None:
    # A stack asks for its ports before it starts anything: a repeat would put two servers on one port
    # (it did once: the alerts API exited 3 and the gateway sent /alerts to the auth API).
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)
