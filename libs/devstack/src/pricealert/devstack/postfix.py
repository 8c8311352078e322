"""A Postfix instance of our own (Debian's binaries, a temp config, queue and Maildir), as the SMTP server under test.

It listens on a loopback port, takes mail for any domain and delivers it with its virtual(8) agent into one Maildir;
a recipient access table, changed by `set_policy` and a reload, defers (4xx) or rejects (5xx) chosen recipients.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.smtp import ReceivedMail, message_id

POSTFIX = "/usr/sbin/postfix"
MAILDIR = "inbox"  # under mail/: every recipient's mail lands in this one Maildir

# Only the services a virtual-mailbox-only server needs, none chrooted (the queue is a temp directory).
MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


def postfix_binary() -> str | None:
    """Debian's postfix command, if installed."""
    return shutil.which("postfix") or (POSTFIX if os.access(POSTFIX, os.X_OK) else None)


def policy_table(defer: list[str], reject: list[str]) -> str:
    """A regexp access table: recipients matching a `defer` pattern get 450, a `reject` pattern 550."""
    lines = [f"/{pattern}/ 550 5.1.1 Recipient rejected by policy" for pattern in reject]
    lines += [f"/{pattern}/ 450 4.2.1 Recipient deferred by policy, try again later" for pattern in defer]
    return "\n".join(lines) + "\n"


@dataclass
class PostfixServer:
    """One Postfix instance under `directory` (config/, queue/, data/, mail/, postfix.log), run as root."""

    directory: Path
    port: int = field(default_factory=free_port)
    hostname: str = "mx.pricealert.test"
    _read: dict[str, tuple[float, ReceivedMail]] = field(default_factory=dict, repr=False)

    @property
    def config(self) -> Path:
        """The instance's config_directory (main.cf, master.cf, the tables)."""
        return self.directory / "config"

    @property
    def maildir(self) -> Path:
        """The Maildir every mail is delivered to."""
        return self.directory / "mail" / MAILDIR

    @property
    def log(self) -> Path:
        """Postfix's own log (maillog_file)."""
        return self.directory / "postfix.log"

    def _main_cf(self) -> str:
        owner = pwd.getpwnam("postfix")
        d = self.directory
        return f"""\
compatibility_level = 3.6
queue_directory = {d / "queue"}
data_directory = {d / "data"}
meta_directory = /etc/postfix
maillog_file = {self.log}
maillog_file_prefixes = {d}
myhostname = {self.hostname}
mydomain = pricealert.test
mydestination =
relay_domains =
local_transport = error:5.1.1 no local delivery here
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
in_flow_delay = 0
smtputf8_enable = no
biff = no
alias_maps =
alias_database =
virtual_mailbox_domains = regexp:{self.config / "domains"}
virtual_mailbox_base = {d / "mail"}
virtual_mailbox_maps = regexp:{self.config / "mailboxes"}
virtual_uid_maps = static:{owner.pw_uid}
virtual_gid_maps = static:{owner.pw_gid}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access regexp:{self.config / "recipient_access"}, permit
"""

    def start(self) -> PostfixServer:
        """Write the configuration (first time), start the instance and wait until it accepts connections."""
        binary = postfix_binary()
        if binary is None:
            raise FileNotFoundError("postfix is not installed (apt-get install postfix)")
        if not self.config.exists():
            self.config.mkdir(parents=True)
            _check_reachable(self.directory)
            (self.config / "main.cf").write_text(self._main_cf())
            (self.config / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
            (self.config / "domains").write_text("/./ any\n")
            (self.config / "mailboxes").write_text(f"/./ {MAILDIR}/\n")
            (self.config / "recipient_access").write_text("")
            for sub in ("queue", "data", "mail"):
                (self.directory / sub).mkdir(exist_ok=True)
            self.directory.chmod(0o755)
            shutil.chown(self.directory / "data", user="postfix")
            shutil.chown(self.directory / "mail", user="postfix", group="postfix")
        self._postfix("start")
        wait_for_port(self.port)
        return self

    def _postfix(self, command: str) -> None:
        binary = postfix_binary()
        assert binary is not None
        done = subprocess.run([binary, "-c", str(self.config), command], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"postfix {command}: {done.returncode} {done.stderr.strip()[-600:]}")

    def master_pid(self) -> int | None:
        """The running master's pid, or None."""
        try:
            pid = int((self.directory / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def processes(self) -> list[int]:
        """The master and every process it runs."""
        master = self.master_pid()
        if master is None:
            return []
        children = Path(f"/proc/{master}/task/{master}/children")
        try:
            return [master, *(int(p) for p in children.read_text().split() if _alive(int(p)))]
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        """`postfix stop` and wait until every process of the instance is gone and the port refuses connections."""
        pids = self.processes()
        if not pids:
            return
        self._postfix("stop")
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                for pid in pids:
                    _kill(pid)
                break
            time.sleep(0.05)
        while _listening(self.port) and time.monotonic() < deadline + 5:
            time.sleep(0.05)

    def set_policy(self, *, defer: list[str] | None = None, reject: list[str] | None = None) -> None:
        """Defer (450) or reject (550) recipients matching these regexps (none: accept all), then reload.

        Sessions already open keep the configuration they started with, so they are ended (as a restart would):
        the client reconnects into the new policy.
        """
        (self.config / "recipient_access").write_text(policy_table(defer or [], reject or []))
        if self.master_pid() is None:
            return
        self._postfix("reload")
        if not _established(self.port):
            return
        # Killing a busy smtpd would make the master throttle the service for a minute: abort the sessions'
        # sockets instead (the smtpd sees the connection lost and exits), or restart when `ss -K` cannot.
        ss = shutil.which("ss")
        if ss is not None:
            subprocess.run([ss, "-K", "-t", "src", "127.0.0.1", "sport", "=", f":{self.port}"], capture_output=True)
        if _established(self.port):
            self.stop()
            self.start()

    @property
    def mails(self) -> list[ReceivedMail]:
        """Every mail delivered to the Maildir so far, in delivery order."""
        return [mail for _, mail in self.delivered()]

    def delivered(self) -> list[tuple[float, ReceivedMail]]:
        """(epoch ms of delivery, mail) of every mail in the Maildir, oldest first."""
        for sub in ("new", "cur"):
            folder = self.maildir / sub
            if not folder.exists():
                continue
            for path in folder.iterdir():
                if path.name in self._read:
                    continue
                try:  # a mail is read once: Maildir files never change (the chaos oracle reads hundreds each second)
                    self._read[path.name] = (path.stat().st_mtime * 1000, _mail(path.read_bytes()))
                except FileNotFoundError:  # moved from new/ to cur/ meanwhile
                    continue
        return sorted(self._read.values(), key=lambda row: row[0])

    def delivery_times(self) -> list[tuple[float, str]]:
        """(epoch ms, Message-ID) of every delivered mail."""
        return [(at, message_id(mail.raw)) for at, mail in self.delivered()]

    def cleanup(self) -> None:
        """Stop the instance and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


_DELIVERED_TO = re.compile(rb"^Delivered-To:[ \t]*(.*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<(.*?)>", re.IGNORECASE | re.MULTILINE)


def _mail(raw: bytes) -> ReceivedMail:
    header = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    recipients = [r.decode("ascii", "replace") for r in _DELIVERED_TO.findall(header)]
    sender = _RETURN_PATH.search(header)
    return ReceivedMail(sender[1].decode("ascii", "replace") if sender else "", recipients, raw)


def _check_reachable(directory: Path) -> None:
    """The postfix account must be able to enter `directory` (its data and mail folders live there)."""
    for folder in (directory, *directory.parents):
        if not folder.stat().st_mode & 0o001:
            raise PermissionError(f"{folder} is not enterable by the postfix account: use devstack.servers.temp_dir")


def _established(port: int) -> set[str]:
    """Socket inodes of the established TCP connections to 127.0.0.1:port (the server's side)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "01":
            inodes.add(fields[9])
    return inodes


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
