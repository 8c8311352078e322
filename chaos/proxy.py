"""A TCP proxy for the chaos scenarios: on cue it delays (latency and jitter per chunk, order kept), throttles,
resets every open connection (RST) and refuses new ones; `normal()` ends every fault."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

CHUNK = 65536
RESET_LINGER = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


def rst(writer: asyncio.StreamWriter) -> None:
    """Close a connection with a TCP RST."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_LINGER)
    writer.transport.abort()


@dataclass(eq=False)
class Link:
    """One proxied connection: the client's side and the target's."""

    client: asyncio.StreamWriter
    target: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class ChaosProxy:
    """Listens on 127.0.0.1:`port` (free if 0) and forwards every connection to target_host:target_port."""

    target_host: str
    target_port: int
    port: int = 0
    latency_s: float = 0.0
    jitter_s: float = 0.0  # each chunk's delay is uniform in latency ± jitter (never below 0)
    rate_bps: float = 0.0  # bytes per second per direction of each connection; 0: unlimited
    refusing: bool = False
    connections: int = 0  # accepted so far
    resets: int = 0  # connections reset so far
    links: set[Link] = field(default_factory=set)
    _server: asyncio.Server | None = None

    async def start(self) -> ChaosProxy:
        """Listen (on the same port again after `refuse`)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and reset every connection."""
        self._close_listener()
        self.reset_all()
        await asyncio.sleep(0)

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()  # not wait_closed: it would wait for the open connections too
            self._server = None

    def delay(self, latency_s: float, jitter_s: float = 0.0) -> None:
        """Every chunk from now on waits latency ± jitter before it is passed on."""
        self.latency_s, self.jitter_s = latency_s, jitter_s

    def throttle(self, rate_bps: float) -> None:
        """At most `rate_bps` bytes per second in each direction of each connection (0: unlimited)."""
        self.rate_bps = rate_bps

    def reset_all(self) -> int:
        """RST both sides of every open connection; returns how many."""
        links = list(self.links)
        for link in links:
            self._drop(link)
        self.resets += len(links)
        return len(links)

    async def refuse(self) -> None:
        """Stop listening: new connections are refused (open ones carry on)."""
        self.refusing = True
        self._close_listener()

    async def normal(self) -> None:
        """No delay, no throttle, listening again."""
        self.delay(0.0)
        self.throttle(0.0)
        if self.refusing or self._server is None:
            self.refusing = False
            await self.start()

    def _drop(self, link: Link) -> None:
        self.links.discard(link)
        rst(link.client)
        rst(link.target)
        for task in link.tasks:
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            target_reader, target_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            rst(writer)
            return
        link = Link(writer, target_writer)
        self.links.add(link)
        link.tasks = [
            asyncio.create_task(self._pipe(reader, target_writer, link)),
            asyncio.create_task(self._pipe(target_reader, writer, link)),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        if link in self.links:  # both sides ended by themselves
            self.links.discard(link)
            writer.close()
            target_writer.close()

    def _due(self, previous: float) -> float:
        """When a chunk read now may leave: never before the chunk ahead of it (order kept)."""
        spread = random.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0
        return max(time.monotonic() + max(self.latency_s + spread, 0.0), previous)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link) -> None:
        """Read chunks and hand them, stamped with when they are due, to the writer (one queue: order kept)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer, link))
        due = 0.0
        try:
            while chunk := await reader.read(CHUNK):
                due = self._due(due)
                queue.put_nowait((due, chunk))
            queue.put_nowait((due, b""))  # end of stream: half-close once everything ahead is out
            await sender
        except (OSError, asyncio.IncompleteReadError):
            self._drop(link)
        finally:
            sender.cancel()

    async def _send(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter, link: Link) -> None:
        free_at = 0.0  # the throttle: when the next byte may go
        try:
            while True:
                due, chunk = await queue.get()
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                while chunk:
                    piece, chunk = (chunk, b"") if not self.rate_bps else self._slice(chunk)
                    if self.rate_bps:
                        free_at = max(free_at, time.monotonic()) + len(piece) / self.rate_bps
                        if (wait := free_at - time.monotonic()) > 0:
                            await asyncio.sleep(wait)
                    writer.write(piece)
                    await writer.drain()
        except OSError:
            self._drop(link)

    def _slice(self, chunk: bytes) -> tuple[bytes, bytes]:
        """A throttled chunk goes in pieces of a tenth of a second's worth, so the rate holds within a chunk."""
        size = max(int(self.rate_bps / 10), 1)
        return chunk[:size], chunk[size:]


class ProxyThread:
    """A ChaosProxy on an event loop of its own thread, so the scenario's polling never delays its traffic."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chaos-proxy", daemon=True)
        self.thread.start()
        self.proxy = ChaosProxy(target_host, target_port)
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(timeout=10)

    @property
    def port(self) -> int:
        """The port the services connect to."""
        return self.proxy.port

    async def run(self, step: Callable[[ChaosProxy], Awaitable[object] | object]) -> object:
        """Run `step(proxy)` (a cue: delay, throttle, reset_all, refuse, normal) on the proxy's loop."""

        async def call() -> object:
            outcome = step(self.proxy)
            return await outcome if asyncio.iscoroutine(outcome) else outcome

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), self.loop))

    def stop(self) -> None:
        """Reset every connection, stop the loop and the thread."""
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
