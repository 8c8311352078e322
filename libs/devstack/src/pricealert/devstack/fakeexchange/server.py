"""FakeExchange: a local Binance stand-in speaking the real WebSocket and REST protocol on one port."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pricealert.devstack.fakeexchange.faults import FaultsMixin
from pricealert.devstack.fakeexchange.market import RandomWalk
from pricealert.devstack.fakeexchange.protocol import TooManyStreams, handle_control, parse_path, valid_stream
from pricealert.devstack.fakeexchange.rest import RestApi, RestFaults
from pricealert.devstack.fakeexchange.session import ClientSession, ConnectionAttempt
from pricealert.devstack.fakeexchange.symbols import SymbolSpec, default_symbols
from pricealert.devstack.fakeexchange.trading import TradingMixin

log = structlog.get_logger()

DAY_S = 24 * 3600.0


class FakeExchange(TradingMixin, FaultsMixin):
    """A real WebSocket + REST server that plays scripted or random trades to subscribed clients."""

    def __init__(
        self,
        symbols: Iterable[SymbolSpec] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_incoming_per_s: int = 5,
        max_streams: int = 1024,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 60.0,
        max_lifetime_s: float | None = DAY_S,
        trade_id_start: int = 1_000_000,
    ) -> None:
        self.symbols: dict[str, SymbolSpec] = {s.symbol: s for s in (symbols or default_symbols())}
        self.host = host
        self.port = port
        self.max_incoming_per_s = max_incoming_per_s
        self.max_streams = max_streams
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_lifetime_s = max_lifetime_s
        self.sessions: list[ClientSession] = []
        self.attempts: list[ConnectionAttempt] = []
        self.rest_faults = RestFaults()
        self.rest = RestApi(self.symbols, self.rest_faults)
        self.silent = False
        self.send_delay_s = 0.0
        self.refuse_remaining = 0
        self.refuse_status = 503
        self.refuse_retry_after_s: int | None = None
        self._trade_ids: dict[str, int] = {}
        self._agg_ids: dict[str, int] = {}
        self._trade_id_start = trade_id_start
        self._server: Server | None = None
        self._walks: list[RandomWalk] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> Self:
        """Listen on host:port (port 0 picks a free one)."""
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            compression=None,
            max_queue=None,
            close_timeout=2,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("fakeexchange.started", ws_url=self.ws_url, rest_url=self.rest_url, symbols=len(self.symbols))
        return self

    async def stop(self) -> None:
        """Stop the random walks and close every connection and the listening socket."""
        for walk in self._walks:
            await walk.stop()
        self._walks.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        log.info("fakeexchange.stopped")

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        """Base WebSocket URL (append /ws or /stream)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Base REST URL (append /api/v3/...)."""
        return f"http://{self.host}:{self.port}"

    # -- observing clients ---------------------------------------------------------------------------

    def subscriptions(self) -> set[str]:
        """Union of the streams every open connection is subscribed to."""
        return {name for s in self.open_sessions() for name in s.streams}

    def subscribers(self, stream: str) -> list[ClientSession]:
        """Open connections subscribed to `stream`."""
        return [s for s in self.open_sessions() if stream in s.streams]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0, what: str = "condition") -> None:
        """Poll `predicate` until it holds; raise TimeoutError after `within` seconds."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake exchange: {what} not reached within {within}s")
            await asyncio.sleep(0.01)

    # -- server internals -----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return self.rest.handle(request)
        route = parse_path(request.path)
        status, text = 101, ""
        if route is None:
            status, text = 404, "Not found"
        elif not all(valid_stream(s) for s in route.streams):
            status, text = 400, "Invalid stream name"
        elif self.max_streams > 0 and len(route.streams) > self.max_streams:
            status, text = 400, "Too many streams"
        elif self.refuse_remaining > 0:
            self.refuse_remaining -= 1
            status, text = self.refuse_status, "Refused by the fake exchange"
        self.attempts.append(ConnectionAttempt(time.time(), request.path, status))
        if status == 101:
            return None
        response = connection.respond(status, text + "\n")
        if status == self.refuse_status and self.refuse_retry_after_s is not None:
            response.headers["Retry-After"] = str(self.refuse_retry_after_s)
        return response

    async def _handle(self, connection: ServerConnection) -> None:
        route = parse_path(connection.request.path if connection.request else "/ws")
        assert route is not None  # _process_request refused the rest
        session = ClientSession(
            len(self.sessions) + 1, connection.request.path if connection.request else "", connection, route.combined
        )
        session.streams.update(dict.fromkeys(route.streams))
        self.sessions.append(session)
        writer = asyncio.create_task(self._writer(session))
        lifetime = asyncio.create_task(self._expire(session)) if self.max_lifetime_s else None
        try:
            async for frame in connection:
                if not session.note_incoming(frame, limit=self.max_incoming_per_s):
                    await connection.close(1008, "Too many requests")
                    break
                try:
                    session.enqueue(handle_control(session, frame, max_streams=self.max_streams))
                except TooManyStreams as exc:
                    await connection.close(1008, f"Too many streams: {exc}")
                    break
        except ConnectionClosed:
            pass
        finally:
            session.closed_at = time.time()
            session.close_code = connection.close_code
            session.close_reason = connection.close_reason or ""
            writer.cancel()
            if lifetime is not None:
                lifetime.cancel()

    async def _writer(self, session: ClientSession) -> None:
        assert session.connection is not None
        with contextlib.suppress(ConnectionClosed):
            while True:
                await session.wakeup.wait()
                session.wakeup.clear()
                while session.outbox:
                    frame = session.outbox.popleft()
                    if self.silent or session.silent:
                        continue
                    delay = session.send_delay_s or self.send_delay_s
                    if delay:
                        await asyncio.sleep(delay)
                    await session.connection.send(frame)
                    session.sent_count += 1

    async def _expire(self, session: ClientSession) -> None:
        assert self.max_lifetime_s is not None and session.connection is not None
        await asyncio.sleep(self.max_lifetime_s)
        await session.connection.close(1000, "Connection lifetime exceeded")
