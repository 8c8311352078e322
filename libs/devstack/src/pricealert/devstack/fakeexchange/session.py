"""Per-connection state of the fake exchange and what it records about its clients."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection


@dataclass(frozen=True)
class Received:
    """One frame a client sent, with the wall-clock time it arrived."""

    at: float
    data: str | bytes


@dataclass(frozen=True)
class ConnectionAttempt:
    """One WebSocket handshake attempt and how the fake answered it (101 = accepted)."""

    at: float
    path: str
    status: int


@dataclass
class ClientSession:
    """One client connection: its streams, properties, outgoing queue and a record of what it sent."""

    id: int
    path: str
    connection: ServerConnection | None
    combined: bool
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str = ""
    streams: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    received: list[Received] = field(default_factory=list)
    sent_count: int = 0
    silent: bool = False
    send_delay_s: float = 0.0
    outbox: deque[str | bytes] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _recent: list[float] = field(default_factory=list)

    @property
    def open(self) -> bool:
        """Whether the connection is still open."""
        return self.closed_at is None

    def messages(self) -> list[str]:
        """The text frames this client sent, in order."""
        return [r.data if isinstance(r.data, str) else r.data.decode(errors="replace") for r in self.received]

    def note_incoming(self, data: str | bytes, *, limit: int, window_s: float = 1.0) -> bool:
        """Record a frame; returns False when it is one more than `limit` in the last `window_s`."""
        now = time.time()
        self.received.append(Received(now, data))
        self._recent = [t for t in self._recent if now - t < window_s]
        self._recent.append(now)
        return limit <= 0 or len(self._recent) <= limit

    def enqueue(self, frame: str | bytes) -> None:
        """Queue a frame for this client's writer task (never blocks the caller)."""
        if self.open:
            self.outbox.append(frame)
            self.wakeup.set()
