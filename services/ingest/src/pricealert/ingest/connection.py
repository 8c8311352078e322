"""One WebSocket connection to the exchange carrying a shard's streams: paced control, receive, watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pricealert.common.tasks import cancel_and_wait
from pricealert.ingest.frames import (
    ControlReply,
    MalformedFrame,
    PriceFilters,
    RejectedTrade,
    ServerShutdown,
    Trade,
    parse_frame,
)
from pricealert.ingest.settings import IngestSettings
from pricealert.ingest.stats import Stats

log = structlog.get_logger()

TickSink = Callable[[Trade], None]
MALFORMED_LOG_EVERY = 1000
REJECTED_LOG_EVERY_S = 10.0
# websockets hands over buffered frames without suspending: yield now and then so the tick writer runs.
YIELD_EVERY_FRAMES = 256


class Link:
    """A single connection: subscribes what it is told to, hands trades to `sink`, notices stalls."""

    def __init__(
        self,
        name: str,
        settings: IngestSettings,
        sink: TickSink,
        stats: Stats,
        *,
        watchdog_s: float,
        filters: PriceFilters | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.sink = sink
        self.stats = stats
        self.filters = filters
        self.watchdog_s = watchdog_s
        self.wanted: set[str] = set()
        self.sent: dict[str, None] = {}  # streams subscribed on the wire, in order
        self.rejected: set[str] = set()
        self.ready = asyncio.Event()  # everything wanted is subscribed and acknowledged
        self.closed = asyncio.Event()
        self.shutdown_announced = asyncio.Event()
        self.stalled = False
        self.got_data = False
        self.opened_at = 0.0
        self._ws: ClientConnection | None = None
        self._wake = asyncio.Event()
        self._next_id = 1
        self._pending: dict[int, tuple[str, list[str]]] = {}
        self._last_send = 0.0
        self._last_data = 0.0
        self._log = log.bind(connection=name)

    async def open(self) -> None:
        """Open the WebSocket; raises what websockets raises when the exchange refuses or is away."""
        self._ws = await connect(
            self.settings.ws_stream_url,
            open_timeout=10,
            ping_interval=self.settings.ping_interval_s,
            ping_timeout=self.settings.ping_timeout_s,
            close_timeout=2,
            max_size=2**22,
            max_queue=4096,
            compression=None,
            proxy=None,
        )
        self.opened_at = time.monotonic()
        self._last_data = self.opened_at
        self._log.info("ingest.connection.opened", url=self.settings.ws_stream_url)

    def set_streams(self, streams: set[str]) -> None:
        """Make `streams` the connection's target set; the control loop converges to it."""
        self.wanted = set(streams)
        self._check_ready()
        self._wake.set()

    async def run(self) -> None:
        """Serve the connection until it closes (or is closed); always sets `closed`."""
        assert self._ws is not None, "open() first"
        tasks = [
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._control()),
            asyncio.create_task(self._watchdog()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    self._log.error("ingest.connection.failed", exc_info=task.exception())
        finally:
            await cancel_and_wait(*tasks)
            with contextlib.suppress(Exception):
                await self._ws.close()
            self.closed.set()
            self._log.info(
                "ingest.connection.closed",
                code=self._ws.close_code,
                reason=self._ws.close_reason,
                stalled=self.stalled,
                lived_s=round(time.monotonic() - self.opened_at, 1),
            )

    async def close(self) -> None:
        """Close the connection and wait until `run` has finished."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        await self.closed.wait()

    async def _receive(self) -> None:
        assert self._ws is not None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            async for raw in self._ws:
                self.stats.frames += 1
                if self.stats.frames % YIELD_EVERY_FRAMES == 0:
                    await asyncio.sleep(0)
                try:
                    frame = parse_frame(raw, time.time_ns() // 1_000_000, self.filters)
                except RejectedTrade as exc:
                    self._rejected(exc)
                    continue
                except MalformedFrame as exc:
                    self.stats.malformed += 1
                    if self.stats.malformed % MALFORMED_LOG_EVERY == 1:
                        self._log.warning(
                            "ingest.frame.malformed",
                            error=str(exc),
                            total=self.stats.malformed,
                            frame=(raw if isinstance(raw, str) else repr(raw))[:200],
                        )
                    continue
                if isinstance(frame, Trade):
                    self._last_data = loop.time()
                    self.got_data = True
                    self.sink(frame)
                elif isinstance(frame, ControlReply):
                    self._on_reply(frame)
                elif isinstance(frame, ServerShutdown):
                    self._log.warning("ingest.connection.shutdown_announced")
                    self.shutdown_announced.set()
                else:
                    self._last_data = loop.time()

    def _rejected(self, exc: RejectedTrade) -> None:
        total = self.stats.rejected[exc.reason] = self.stats.rejected.get(exc.reason, 0) + 1
        # A flood of bad prices must not flood the log: one line per reason per interval, with the count.
        now = time.monotonic()
        if now >= self.stats.rejected_log_due.get(exc.reason, 0.0):
            self.stats.rejected_log_due[exc.reason] = now + REJECTED_LOG_EVERY_S
            self._log.warning(
                "ingest.trade.rejected", reason=exc.reason, symbol=exc.symbol[:64], price=exc.price, total=total
            )

    def _on_reply(self, reply: ControlReply) -> None:
        request = self._pending.pop(reply.id, None) if isinstance(reply.id, int) else None
        if reply.error is not None:
            self.stats.control_errors += 1
            self._log.error(
                "ingest.control.rejected", id=reply.id, error=reply.error, method=request[0] if request else None
            )
            if request is not None and request[0] == "SUBSCRIBE":
                for stream in request[1]:
                    self.sent.pop(stream, None)
                    self.rejected.add(stream)
        self._check_ready()

    def _diff(self) -> tuple[list[str], list[str]]:
        add = sorted(s for s in self.wanted if s not in self.sent and s not in self.rejected)
        remove = [s for s in self.sent if s not in self.wanted]
        return add, remove

    def _check_ready(self) -> None:
        add, remove = self._diff()
        if not add and not remove and not self._pending:
            self.ready.set()
        else:
            self.ready.clear()

    async def _control(self) -> None:
        assert self._ws is not None
        batch = self.settings.subscribe_batch_size
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                add, remove = self._diff()
                self._check_ready()
                if not add and not remove:
                    break
                method, streams = ("SUBSCRIBE", add[:batch]) if add else ("UNSUBSCRIBE", remove[:batch])
                await self._pace()
                request_id = self._next_id
                self._next_id += 1
                self._pending[request_id] = (method, streams)
                for stream in streams:
                    if method == "SUBSCRIBE":
                        self.sent[stream] = None
                    else:
                        self.sent.pop(stream, None)
                if method == "SUBSCRIBE" and len(self.sent) == len(streams):
                    # Data is only expected from now on: start the watchdog's clock here.
                    self._last_data = asyncio.get_running_loop().time()
                try:
                    await self._ws.send(json.dumps({"method": method, "params": streams, "id": request_id}))
                except ConnectionClosed:
                    return
                self.stats.control_messages += 1
                self._log.info(
                    "ingest.control.sent", method=method, streams=len(streams), id=request_id, total=len(self.sent)
                )

    async def _pace(self) -> None:
        gap = 1.0 / self.settings.control_messages_per_s
        wait = self._last_send + gap - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_send = time.monotonic()

    async def _watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.watchdog_s / 4))
            if not self.sent:
                self._last_data = loop.time()
                continue
            silent_for = loop.time() - self._last_data
            if silent_for > self.watchdog_s:
                self.stalled = True
                self.stats.watchdog_reconnects += 1
                self._log.warning("ingest.connection.stalled", silent_s=round(silent_for, 1), streams=len(self.sent))
                return
