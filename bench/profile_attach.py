"""Run a bench command as it is and record one of the processes it starts with py-spy, while its load runs.

The benches start the services themselves (ServiceProcess, uvicorn workers): this finds the one to profile among
the command's descendants (/proc), waits for the sign that its load runs (a process appearing, e.g. wrk), and
attaches `py-spy record` to it for a bounded time. Attaching needs ptrace rights over the process (root, or
CAP_SYS_PTRACE, or Yama's ptrace_scope 0 for a child of one's own): `py_spy_works` tells whether this machine gives
them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PY_SPY = str(Path(sys.executable).with_name("py-spy"))


def command_line(pid: int) -> str:
    """A process's arguments joined by spaces ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """Every live process under `root`, children before grandchildren."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def find_descendant(root: int, needle: str) -> int | None:
    """The first process under `root` whose command line contains `needle`."""
    return next((pid for pid in descendants(root) if needle in command_line(pid)), None)


def cpu_seconds(pids: list[int]) -> dict[int, tuple[float, float]]:
    """User and system CPU seconds each live one of `pids` has used so far."""
    found, tick = {}, os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return found


def has_socket(pid: int) -> bool:
    """Whether a process holds a socket: a service has done its imports and connected."""
    try:
        return any(os.readlink(fd).startswith("socket:") for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def py_spy_works() -> str | None:
    """None if py-spy can read a Python process here, else what py-spy said."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        dump = subprocess.run([PY_SPY, "dump", "--pid", str(child.pid)], capture_output=True, text=True, check=False)
        return None if dump.returncode == 0 else (dump.stderr or dump.stdout).strip().splitlines()[0]
    finally:
        child.kill()
        child.wait()


@dataclass
class Target:
    """What to profile in a bench command: the process, when, for how long."""

    process: str  # a substring of its command line
    start_when: str  # a substring of the command line of the process whose first socket means the load runs
    settle_s: float  # then wait this long before recording
    seconds: float
    subprocesses: bool = False  # the target's own children too (uvicorn's workers)


def record(pid: int, svg: Path, *, seconds: float, rate: int, subprocesses: bool, native: bool) -> dict[str, object]:
    """`py-spy record` of `pid` for `seconds` into a flame graph SVG; returns what py-spy reported."""
    command = [PY_SPY, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate)]
    command += ["--format", "flamegraph", "--function", "--output", str(svg)]
    command += ["--subprocesses"] * subprocesses + ["--native"] * native
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    said = (done.stdout + done.stderr).strip().splitlines()
    return {"exit_code": done.returncode, "py_spy_said": said[-1] if said else "", "command": " ".join(command[1:])}


def remember(seen: dict[int, str], root: int) -> None:
    """Add the command lines of `root`'s processes to `seen`; one that has exited meanwhile keeps what was seen."""
    seen.update((pid, line) for pid in descendants(root) if (line := command_line(pid)))


def profile_command(
    command: list[str], target: Target, svg: Path, *, rate: int, native: bool, timeout_s: float = 300
) -> dict[str, object]:
    """Run `command`, record `target` in it into `svg` once its load runs, then stop the command."""
    log = svg.with_suffix(".log")  # the bench's output (its Ctrl-C traceback, or why it failed)
    with log.open("wb") as output:
        bench = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    seen: dict[int, str] = {}  # the bench's processes: what to end if its interruption leaves them behind
    try:
        deadline = time.monotonic() + timeout_s
        while (signal_pid := find_descendant(bench.pid, target.start_when)) is None or not has_socket(signal_pid):
            if bench.poll() is not None or time.monotonic() > deadline:
                return {"error": f"{target.start_when!r} never started (exit {bench.poll()}; see {log})"}
            time.sleep(0.05)
        time.sleep(target.settle_s)
        pid = signal_pid if target.start_when == target.process else find_descendant(bench.pid, target.process)
        remember(seen, bench.pid)
        if pid is None:
            return {"error": f"no {target.process!r} process while {target.start_when!r} ran"}
        profiled = [pid, *descendants(pid)] if target.subprocesses else [pid]
        before, started = cpu_seconds(profiled), time.monotonic()
        outcome = record(pid, svg, seconds=target.seconds, rate=rate, subprocesses=target.subprocesses, native=native)
        after, elapsed = cpu_seconds(profiled), time.monotonic() - started
        # What the recorded processes used meanwhile (py-spy's own pauses included): how busy, how much in the kernel.
        if pid in after:
            used = [(after[p][0] - before[p][0], after[p][1] - before[p][1]) for p in before if p in after]
            outcome["cpu_s"] = {"user": round(sum(u for u, _ in used), 2), "system": round(sum(s for _, s in used), 2)}
        outcome["wall_s"] = round(elapsed, 2)
        remember(seen, bench.pid)
        return {**outcome, "target_command": seen.get(pid, target.process), "seconds": target.seconds}
    finally:
        # Its figures are not wanted: the bench is stopped at once (it stops its servers in `finally` on Ctrl-C).
        if bench.poll() is None:
            bench.send_signal(signal.SIGINT)
            try:
                bench.wait(timeout=60)
            except subprocess.TimeoutExpired:
                bench.kill()
                bench.wait()
        for pid, line in seen.items():  # what the bench left behind (not all its steps clean up), if still the same
            if line and command_line(pid) == line:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
