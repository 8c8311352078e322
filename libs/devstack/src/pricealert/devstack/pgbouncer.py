"""A real PgBouncer (Debian's `pgbouncer`) in transaction mode on a loopback port, in front of one Postgres."""

from __future__ import annotations

import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.servers import _unprivileged_user

DEBIAN_BINARY = Path("/usr/sbin/pgbouncer")


def pgbouncer_binary() -> str | None:
    """pgbouncer on PATH or where Debian's package puts it; None when it is not installed."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return str(DEBIAN_BINARY) if DEBIAN_BINARY.exists() else None


@dataclass
class PgBouncerServer:
    """pgbouncer with `pool_mode = transaction` on a loopback port, routing every database name to `upstream`.

    `upstream` is a postgresql:// URL of the server (any database): its host, port, user and password.
    Clients are trusted (auth_type = trust, the user listed in the auth file); pgbouncer logs in to Postgres
    as that user, with its password when the URL has one.
    """

    directory: Path
    upstream: str
    port: int = field(default_factory=free_port)
    pool_size: int = 20
    process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        upstream = urlsplit(self.upstream)
        user, password = unquote(upstream.username or "postgres"), unquote(upstream.password or "")
        (self.directory / "userlist.txt").write_text(f'"{user}" "{password}"\n')
        return f"""\
[databases]
* = host={upstream.hostname} port={upstream.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.directory / "userlist.txt"}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 2000
; tests create a database each: give idle server connections back to Postgres soon
server_idle_timeout = 5
autodb_idle_timeout = 30
logfile = {self.directory / "pgbouncer.log"}
log_connections = 0
log_disconnections = 0
"""

    def start(self) -> PgBouncerServer:
        """Write the ini and the auth file, start pgbouncer and wait until it accepts connections."""
        binary = pgbouncer_binary()
        if binary is None:
            raise FileNotFoundError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        self.directory.mkdir(parents=True, exist_ok=True)
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(self._config())
        # pgbouncer refuses to run as root: as root, run it as Postgres's unprivileged account.
        account = _unprivileged_user()
        uid = gid = None
        if account is not None:
            entry = pwd.getpwnam(account)
            shutil.chown(self.directory, user=account)
            uid, gid = entry.pw_uid, entry.pw_gid
        with (self.directory / "stderr.log").open("ab") as output:
            self.process = subprocess.Popen(
                [binary, str(ini)],
                stdout=output,
                stderr=subprocess.STDOUT,
                user=uid,
                group=gid,
                extra_groups=None if uid is None else [],
            )
        try:
            wait_for_port(self.port, timeout=10)
        except TimeoutError:
            self.stop()
            log = (self.directory / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"pgbouncer did not start on port {self.port}: {log[-2000:]}") from None
        return self

    def url_for(self, url: str) -> str:
        """`url` (a database of the upstream server) reached through this pgbouncer instead."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def stop(self) -> None:
        """Stop pgbouncer at once (SIGTERM: immediate shutdown, clients are disconnected)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
