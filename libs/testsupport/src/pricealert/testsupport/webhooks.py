"""A real local HTTP receiver for webhook and Apprise (json://) deliveries, answering on cue.

It records every request (headers, body, time), verifies Standard Webhooks signatures as a receiver would, and
answers as told: a status, a delay, a slowly trickled body, a redirect, a connection closed without an answer; it
can stop listening for a while and come back on the same port. A small asyncio HTTP/1.1 server (h11), so each of
these misbehaviours is exact; run it in the test's event loop (`async with WebhookReceiver() as r`) or, from
synchronous code, in a thread of its own (`receiver_in_thread()`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import h11
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from pricealert.common.tasks import cancel_and_wait

MAX_BODY = 1 << 20  # a request body larger than this drops the connection (no test sends one on purpose)


@dataclass(frozen=True)
class Cue:
    """How to answer one request."""

    status: int = 200
    body: bytes = b""
    delay_s: float = 0.0  # before answering (longer than the sender's timeout: a timeout)
    trickle_s: float = 0.0  # a pause before each byte of the body: a slow body
    trickle_from: int = 0  # the body's first bytes go at once, the trickle starts after them
    close: bool = False  # close the connection without answering
    location: str | None = None  # a Location header (with a 3xx status: a redirect)


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.time() when the whole request was in
    verified_by: tuple[str, ...] = ()  # the receiver's secrets whose signature the request carried

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def verified(self) -> bool:
        """The signature checked out with at least one of the receiver's secrets."""
        return bool(self.verified_by)


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1:<free port> recording requests and answering with `cue` (or queued cues)."""

    secrets: list[str] = field(default_factory=list)  # verify signatures with these (Webhook(secret).verify)
    cue: Cue = field(default_factory=Cue)  # the answer when no queued cue is left
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, chosen at start and kept across down/up
    tls: ssl.SSLContext | None = None  # a server context: https
    requests: list[Received] = field(default_factory=list)
    _queued: collections.deque[Cue] = field(default_factory=collections.deque)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _arrived: asyncio.Condition | None = None
    _up_task: asyncio.Task[None] | None = None

    def url(self, path: str = "/hook", *, host: str | None = None) -> str:
        """http(s)://<host>:<port><path> (host: a name to put in the URL instead of the address)."""
        return f"{'https' if self.tls else 'http'}://{host or self.host}:{self.port}{path}"

    def queue(self, *cues: Cue) -> None:
        """Answer the next requests with these, in order, then with `cue` again."""
        self._queued.extend(cues)

    def verify(self, received: Received, secret: str) -> bool:
        """Whether `received` carries a valid signature made with `secret` (as standardwebhooks checks it)."""
        try:
            Webhook(secret).verify(received.body, received.headers)
        except WebhookVerificationError:
            return False
        return True

    async def start(self) -> Self:
        """Listen (on the same port again after `down`)."""
        if self._arrived is None:
            self._arrived = asyncio.Condition()
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def down(self, seconds: float | None = None) -> None:
        """Stop listening and drop every open connection; back up after `seconds` if given (else call `up`)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        await cancel_and_wait(*self._tasks)  # an answer still to come (a delay) never comes
        if seconds is not None:
            self._up_task = asyncio.create_task(self._up_after(seconds))

    async def _up_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.up()

    async def up(self) -> None:
        """Listen again, on the same port."""
        if self._server is None:
            await self.start()

    async def stop(self) -> None:
        """Stop for good."""
        if self._up_task is not None:
            self._up_task.cancel()
        await self.down()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, count: int, within_s: float = 10.0) -> list[Received]:
        """The requests once at least `count` arrived; TimeoutError after `within_s`."""
        assert self._arrived is not None, "start the receiver first"
        async with asyncio.timeout(within_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    async def _record(self, request: h11.Request, body: bytes) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers}
        received = Received(request.method.decode(), request.target.decode(), headers, body, time.time())
        if self.secrets:
            ok = tuple(s for s in self.secrets if self.verify(received, s))
            received = Received(received.method, received.path, headers, body, received.at, ok)
        self.requests.append(received)
        if self._arrived is not None:
            async with self._arrived:
                self._arrived.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
        try:
            while True:
                request, body = await _read_request(conn, reader)
                if request is None:
                    return
                await self._record(request, body)
                cue = self._queued.popleft() if self._queued else self.cue
                if cue.delay_s:
                    await asyncio.sleep(cue.delay_s)
                if cue.close:
                    return
                await _answer(conn, writer, cue)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, ssl.SSLError, h11.ProtocolError):
            return
        except asyncio.CancelledError:
            # Ended by `down`/`stop` or the loop's end: asyncio's stream callback would report a cancelled
            # handler as an error.
            return
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> tuple[h11.Request | None, bytes]:
    request: h11.Request | None = None
    chunks: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            chunks.append(event.data)
            if sum(map(len, chunks)) > MAX_BODY:
                return None, b""
        elif isinstance(event, h11.EndOfMessage):
            return request, b"".join(chunks)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None, b""


async def _answer(conn: h11.Connection, writer: asyncio.StreamWriter, cue: Cue) -> None:
    headers = [("content-length", str(len(cue.body))), ("content-type", "text/plain; charset=utf-8")]
    if cue.location is not None:
        headers.append(("location", cue.location))
    writer.write(conn.send(h11.Response(status_code=cue.status, headers=headers)) or b"")
    if cue.trickle_s:
        if cue.trickle_from:
            writer.write(conn.send(h11.Data(data=cue.body[: cue.trickle_from])) or b"")
        for index in range(cue.trickle_from, len(cue.body)):
            await writer.drain()
            await asyncio.sleep(cue.trickle_s)
            writer.write(conn.send(h11.Data(data=cue.body[index : index + 1])) or b"")
    elif cue.body:
        writer.write(conn.send(h11.Data(data=cue.body)) or b"")
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()


@contextlib.contextmanager
def receiver_in_thread(**kwargs: Any) -> Iterator[tuple[WebhookReceiver, asyncio.AbstractEventLoop]]:
    """A receiver running in an event loop of its own thread (for synchronous callers and separate loops).

    Call its coroutines with `asyncio.run_coroutine_threadsafe(receiver.down(60), loop)`.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webhook-receiver", daemon=True)
    thread.start()
    receiver = WebhookReceiver(**kwargs)
    try:
        asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(10)
        yield receiver, loop
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
