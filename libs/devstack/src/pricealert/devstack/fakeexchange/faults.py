"""Fault modes of the fake exchange: drops, silence, garbage, serverShutdown, refused handshakes, REST 429."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any

import structlog

from pricealert.devstack.fakeexchange.rest import RestFaults
from pricealert.devstack.fakeexchange.session import ClientSession

log = structlog.get_logger()

GARBAGE_FRAMES: tuple[str | bytes, ...] = (
    "not json at all",
    '{"stream":"btcusdt@trade","data":',
    "[1,2,3]",
    b"\x00\xffbinary",
    '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":"x","p":"abc"}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":5,"p":"NaN","q":"1","T":1}}',
)


class FaultsMixin:
    """Ways to make the fake exchange misbehave, for fault tests."""

    sessions: list[ClientSession]
    silent: bool
    send_delay_s: float
    refuse_remaining: int
    refuse_status: int
    refuse_retry_after_s: int | None
    rest_faults: RestFaults

    def open_sessions(self) -> list[ClientSession]:
        """Connections currently open."""
        return [s for s in self.sessions if s.open]

    def _spawn(self, coro: Any) -> None:
        raise NotImplementedError

    def drop_connections(self, *, abrupt: bool = True) -> int:
        """Drop every open connection: abort the TCP stream (no close frame) or close with 1011."""
        sessions = self.open_sessions()
        for session in sessions:
            if session.connection is None:
                continue
            if abrupt:
                session.connection.transport.abort()
            else:
                self._spawn(session.connection.close(1011, "internal error"))
        log.info("fakeexchange.dropped", connections=len(sessions), abrupt=abrupt)
        return len(sessions)

    def slow_down(self, delay_s: float) -> None:
        """Wait `delay_s` before sending each frame on every connection (0 turns it off)."""
        self.send_delay_s = delay_s

    def go_silent(self, silent: bool = True) -> None:
        """Stop (or resume) sending anything on every connection, new ones too, without closing them."""
        self.silent = silent

    def send_garbage(self, frames: Iterable[str | bytes] | None = None) -> int:
        """Send malformed frames to every open connection; returns how many connections got them."""
        chosen: list[str | bytes] = list(frames) if frames is not None else list(GARBAGE_FRAMES)
        sessions = self.open_sessions()
        for session in sessions:
            for frame in chosen:
                session.enqueue(frame)
        return len(sessions)

    async def server_shutdown(self, grace_s: float = 1.0) -> int:
        """Announce `serverShutdown` on every open connection, then close them after `grace_s`."""
        sessions = self.open_sessions()
        now = int(time.time() * 1000)
        raw = json.dumps({"e": "serverShutdown", "E": now}, separators=(",", ":"))
        for session in sessions:
            session.enqueue(f'{{"stream":"!serverShutdown","data":{raw}}}' if session.combined else raw)
        await asyncio.sleep(grace_s)
        for session in sessions:
            if session.open and session.connection is not None:
                await session.connection.close(1001, "server shutdown")
        return len(sessions)

    def refuse_connections(self, count: int, status: int = 503, retry_after_s: int | None = None) -> None:
        """Reject the next `count` WebSocket handshakes with HTTP `status` (and a Retry-After header)."""
        self.refuse_remaining = count
        self.refuse_status = status
        self.refuse_retry_after_s = retry_after_s

    def fail_rest(self, count: int, status: int = 429, retry_after_s: int = 1) -> None:
        """Answer the next `count` REST requests with `status` and a Retry-After header."""
        self.rest_faults.remaining = count
        self.rest_faults.status = status
        self.rest_faults.retry_after_s = retry_after_s
