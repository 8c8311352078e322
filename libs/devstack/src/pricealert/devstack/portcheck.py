"""Before `make run` starts anything: is every port it will bind free? If not, say which, and what holds it."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket


@dataclass(frozen=True)
class PlannedPort:
    """A port the dev stack will listen on, what listens there, and the variable that moves it."""

    port: int
    what: str
    variable: str | None = None
    host: str = "127.0.0.1"


def in_use(planned: PlannedPort) -> bool:
    """Whether binding the port fails because something else has it (as the server's own bind would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no holder
        try:
            sock.bind((planned.host, planned.port))
        except OSError as exc:
            return exc.errno in {errno.EADDRINUSE, errno.EACCES}
    return False


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    return inodes


def holder(port: int) -> str | None:
    """`pid <n> (<command line>)` of the process listening on the port, when /proc tells (Linux, our own user)."""
    sockets = _listening_inodes(port)
    if not sockets:
        return None
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            held = any(os.readlink(fd) in sockets for fd in (entry / "fd").iterdir())
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone, or not ours to look at
            continue
        if held:
            program, _, rest = command.partition(" ")
            short = f"{Path(program).name} {rest}".strip()
            return f"pid {entry.name} ({short[:80]})"
    return None


def busy_message(held: list[PlannedPort]) -> str:
    """One plain line: the first port in use, what holds it, what to do, and the others in use."""
    first = held[0]
    by = holder(first.port)
    fix = f"Set {first.variable} or stop it." if first.variable else "Stop it."
    line = (
        f"port {first.port} ({first.what}) is in use{f' by {by}' if by else ''} — is another `make run` running? {fix}"
    )
    if len(held) > 1:
        line += " Also in use: " + ", ".join(f"{p.port} ({p.what})" for p in held[1:]) + "."
    return line


def held_ports(planned: list[PlannedPort]) -> list[PlannedPort]:
    """The planned ports something already listens on."""
    return [p for p in planned if in_use(p)]
