"""deploy/nginx's gateway template rendered and run by a local nginx, as compose runs it, in a private prefix."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pricealert.devstack.ports import wait_for_port

# This package runs from the workspace only (the root's dev group), so the repository is found from here.
TEMPLATE = Path(__file__).resolve().parents[5] / "deploy" / "nginx" / "pricealert.conf.template"

# What the nginx image's own nginx.conf provides around conf.d, in a private prefix.
MAIN_CONF = """\
daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log {log_level};
events {{ worker_connections {connections}; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/pricealert.conf;
}}
"""


def nginx_binary() -> str | None:
    """Debian's nginx, if installed."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def render_template(values: Mapping[str, str], template: Path = TEMPLATE) -> str:
    """The template with exactly these variables substituted, as the nginx image's envsubst does."""
    text = template.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


@dataclass
class Nginx:
    """nginx running the gateway template with local upstreams, in its own prefix directory."""

    binary: str
    prefix: Path
    port: int
    upstreams: Mapping[str, str]
    template: Path = TEMPLATE
    workers: str = "1"  # the benchmark runs "auto", one per core, as the image does
    connections: int = 256
    log_level: str = "info"
    process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        """Render the template (local values) and a main nginx.conf around it; returns the main file."""
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        values = {"NGINX_LISTEN": f"127.0.0.1:{self.port}", "NGINX_RESOLVER": "127.0.0.1", **self.upstreams}
        (self.prefix / "pricealert.conf").write_text(render_template(values, self.template))
        main = self.prefix / "nginx.conf"
        main.write_text(
            MAIN_CONF.format(
                prefix=self.prefix, workers=self.workers, connections=self.connections, log_level=self.log_level
            )
        )
        return main

    def command(self, *args: str) -> list[str]:
        """nginx with this prefix, configuration and error log."""
        prefix = str(self.prefix)
        return [self.binary, "-p", prefix, "-c", f"{prefix}/nginx.conf", "-e", f"{prefix}/error.log", *args]

    def check(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t`: nginx's own verdict on the configuration."""
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self) -> Nginx:
        """Start nginx in the foreground (its access log, /dev/stdout, goes to access.log)."""
        self.write_config()
        with (self.prefix / "access.log").open("ab") as access:
            self.process = subprocess.Popen(self.command(), stdout=access, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=10)
        return self

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON access-log lines written so far."""
        lines = (self.prefix / "access.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> None:
        """SIGQUIT (graceful) and wait, then kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
