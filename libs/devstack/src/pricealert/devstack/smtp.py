"""A real SMTP server (aiosmtpd) that keeps every mail: in memory for tests, as .eml files for `make run`."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from pricealert.devstack.ports import free_port

_FOLDED = re.compile(rb"\r?\n[ \t]+")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def message_id(raw: bytes) -> str:
    """The Message-ID header of a raw mail, read from its unfolded header block; '' if it has none.

    Parsing the whole message costs milliseconds: under load the server that measures would be the bottleneck.
    """
    header = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    found = _MESSAGE_ID.search(_FOLDED.sub(b" ", header))
    return found[1].decode("ascii", "replace") if found else ""


@dataclass
class ReceivedMail:
    """One accepted mail."""

    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        """The parsed message."""
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def text(self) -> str:
        """The plain-text body."""
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""


@dataclass
class MailboxHandler:
    """Accepts mail, or fails on request: `fail_next(n, "451 ...")` answers the next n DATA with that reply."""

    folder: Path | None = None
    accept_log: Path | None = None  # one line per accepted mail: "<accepted at, ms since epoch> <Message-ID>"
    mails: list[ReceivedMail] = field(default_factory=list)
    _failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next `count` messages with `reply` instead of accepting them."""
        with self._lock:
            self._failures.extend([reply] * count)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the mail (or fail it as told)."""
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
        content = envelope.original_content or b""
        mail = ReceivedMail(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], content)
        with self._lock:
            self.mails.append(mail)
            number = len(self.mails)
        if self.accept_log is not None:
            with self.accept_log.open("a") as log:
                log.write(f"{time.time() * 1000:.3f} {message_id(content)}\n")
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = message_id(content).strip("<>").replace("/", "_")
            (self.folder / f"{number:06d}-{name or 'mail'}.eml").write_bytes(content)
        return "250 2.0.0 Message accepted for delivery"


class MailboxServer:
    """An aiosmtpd controller on a loopback port with a MailboxHandler."""

    def __init__(self, folder: Path | None = None, port: int | None = None, accept_log: Path | None = None) -> None:
        self.port = port or free_port()
        self.handler = MailboxHandler(folder=folder, accept_log=accept_log)
        self._controller: Any = None

    @property
    def mails(self) -> list[ReceivedMail]:
        """Every mail accepted so far."""
        return self.handler.mails

    def start(self) -> MailboxServer:
        """Start listening (in a background thread)."""
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening; accepted mails stay available."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def main() -> None:
    """`python -m pricealert.devstack.smtp --port N [--folder DIR]`: serve until SIGTERM, then print the count."""
    import argparse
    import json
    import signal
    import sys

    parser = argparse.ArgumentParser(prog="python -m pricealert.devstack.smtp")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--accept-log", type=Path, default=None, help="append '<ms> <Message-ID>' per mail")
    args = parser.parse_args()
    server = MailboxServer(folder=args.folder, port=args.port, accept_log=args.accept_log).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
    ids = [message_id(m.raw) for m in server.mails]
    sys.stdout.write(json.dumps({"accepted": len(ids), "distinct_message_ids": len(set(ids))}) + "\n")


if __name__ == "__main__":
    main()
