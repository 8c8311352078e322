"""Each service as its own OS process: start with an environment, stop with SIGTERM, kill on request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVICE_MODULES = {
    "auth": "pricealert.auth",
    "alerts": "pricealert.alerts",
    "alerts-worker": "pricealert.alerts",
    "ingest": "pricealert.ingest",
    "evaluator": "pricealert.evaluator",
    "notifier": "pricealert.notifier",
    "gateway": "pricealert.devstack.gateway",
    "fakeexchange": "pricealert.devstack.fakeexchange",
    "smtp": "pricealert.devstack.smtp",
}
# The command a module runs for a process of that name (the alerts API and its worker share a module).
SERVICE_COMMANDS = {"alerts": ["serve"], "alerts-worker": ["worker"]}


@dataclass
class ServiceProcess:
    """One `python -m <module>` child process."""

    name: str
    env: Mapping[str, str]
    args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Spawn the process with the parent's environment plus `env`."""
        command = [sys.executable, "-m", SERVICE_MODULES[self.name], *SERVICE_COMMANDS.get(self.name, []), *self.args]
        output = self.log_path.open("ab") if self.log_path is not None else None
        self.process = subprocess.Popen(
            command, env={**os.environ, **self.env}, stdout=output, stderr=subprocess.STDOUT if output else None
        )
        return self

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the crash that leaves no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
