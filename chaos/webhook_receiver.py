"""A webhook receiver for `make chaos` and `make bench`: verifies every Standard Webhooks signature, logs every delivery
with its receive time, answers slowly on cue, and goes down and up on the same port.

In process (chaos): `await WebhookReceiver(secrets).start()`. In its own process (bench):
`python -m chaos.webhook_receiver --port P --secret whsec_… [--log FILE] [--delay-ms N]`; SIGTERM prints the counts
as JSON. A delivery is logged when its request has been read, before it is answered: a sender killed while waiting
for the answer sends it again, and the receiver sees that duplicate, as a real one would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from pricealert.devstack.ports import free_port

MAX_BODY = 1 << 20
_OK = b"HTTP/1.1 204 No Content\r\n\r\n"
_OK_CLOSE = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Received:
    """One delivery as the receiver saw it."""

    at_ms: float  # epoch ms when its request had been read
    webhook_id: str
    path: str
    verified: bool  # a signature matched a secret of its path, and the body names the same firing
    event_type: str


@dataclass
class WebhookReceiver:
    """An HTTP/1.1 server (keep-alive) answering 204 to every POST; `secrets`: URL path -> the signing secrets."""

    secrets: dict[str, list[str]] = field(default_factory=dict)
    any_path: list[str] = field(default_factory=list)  # the secrets of a path `secrets` does not name
    channels: dict[str, str] = field(default_factory=dict)  # path -> the channel id it stands for (chaos)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None  # one line per delivery: "<at ms> <webhook-id> <verified 0|1> <path>"
    delay_s: float = 0.0  # before answering (the delivery is logged before)
    received: list[Received] = field(default_factory=list)
    in_progress: int = 0  # requests read and not answered yet
    _server: asyncio.Server | None = None
    _idle: set[asyncio.StreamWriter] = field(default_factory=set)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    _verifiers: dict[str, list[Webhook]] = field(default_factory=dict)
    _log: Any = None

    def url(self, path: str) -> str:
        """The URL of `path` on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def up(self) -> bool:
        """Whether it listens now."""
        return self._server is not None

    async def start(self) -> Self:
        """Listen on the port (the same one after a stop)."""
        if self.log_path is not None and self._log is None:
            self._log = self.log_path.open("a", buffering=1)  # line by line: readers poll it
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        """Go down: refuse new connections, answer every request already read, close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._idle):
            writer.close()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=30)
        await server.wait_closed()
        if self._log is not None:
            self._log.flush()

    def add_secret(self, path: str, secret: str) -> None:
        """Verify the deliveries to `path` with `secret` (too)."""
        self.secrets.setdefault(path, []).append(secret)
        self._verifiers.pop(path, None)

    def ids(self) -> Counter[str]:
        """webhook-id -> how many times it arrived."""
        return Counter(r.webhook_id for r in self.received)

    def _verify(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[bool, str]:
        """(signature and body right, the event's type)."""
        if path not in self._verifiers:
            self._verifiers[path] = [Webhook(s) for s in self.secrets.get(path, self.any_path)]
        for verifier in self._verifiers[path]:
            try:
                payload = verifier.verify(body, headers)
            except WebhookVerificationError:
                continue
            if isinstance(payload, dict):
                same = payload.get("firing_id") == headers.get("webhook-id") or payload.get("type") != "alert.fired"
                return same, str(payload.get("type"))
        return False, ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while self._server is not None:
                self._idle.add(writer)
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                finally:
                    self._idle.discard(writer)
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else "/"
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                length = int(headers.get("content-length", "0"))
                if length > MAX_BODY:
                    break
                body = await reader.readexactly(length)
                self.in_progress += 1
                try:
                    self._record(path, body, headers)
                    if self.delay_s:
                        await asyncio.sleep(self.delay_s)
                    closing = self._server is None or headers.get("connection", "").lower() == "close"
                    writer.write(_OK_CLOSE if closing else _OK)
                    await writer.drain()
                finally:
                    self.in_progress -= 1
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    def _record(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        verified, event_type = self._verify(path, body, headers)
        got = Received(time.time() * 1000, headers.get("webhook-id", ""), path, verified, event_type)
        self.received.append(got)
        if self._log is not None:
            self._log.write(f"{got.at_ms:.3f} {got.webhook_id} {int(verified)} {path}\n")


def read_log(path: Path) -> list[Received]:
    """The deliveries a receiver in its own process logged."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        at, webhook_id, verified, where = line.split(" ", 3)
        rows.append(Received(float(at), webhook_id, where, verified == "1", ""))
    return rows


async def serve(port: int, secret: str, log_path: Path | None, delay_ms: float) -> dict[str, int]:
    """Receive on `port` (every path signed with `secret`) until SIGTERM; the counts."""
    receiver = WebhookReceiver(any_path=[secret], port=port, log_path=log_path, delay_s=delay_ms / 1000)
    await receiver.start()
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    await done.wait()
    await receiver.stop()
    ids = receiver.ids()
    return {
        "received": len(receiver.received),
        "distinct_ids": len(ids),
        "unverified": sum(1 for r in receiver.received if not r.verified),
    }


def main() -> None:
    """Run a receiver in this process."""
    parser = argparse.ArgumentParser(prog="python -m chaos.webhook_receiver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        counts = asyncio.run(serve(args.port, args.secret, args.log, args.delay_ms))
        sys.stdout.write(json.dumps(counts) + "\n")


if __name__ == "__main__":
    main()
