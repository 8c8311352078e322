"""Open-loop HTTP/1.1 load at a fixed rate, each latency counted from the request's scheduled time.

wrk sends as fast as the server answers, so its latencies are those of a saturated system; and a closed loop
hides a stall (no request is sent while the server is stuck: coordinated omission). Here request i is due at
start + i / rate whatever happened before; one that waits for a free connection waits on the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from evaluator_bench import percentile

Request = Callable[[int], bytes]


@dataclass
class Outcome:
    """What a paced run measured."""

    sent: int = 0
    bad_status: int = 0  # answered with a status of 400 or more
    latencies_ms: list[float] = field(default_factory=list)  # of every answered request

    @property
    def errors(self) -> int:
        """Requests answered with an error, failed, or never answered."""
        return self.bad_status + self.sent - len(self.latencies_ms)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; returns its status and whether the server keeps the connection open."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


class Connections:
    """Keep-alive connections to one server, opened on demand up to a bound."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.opened = 0
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.limit:
            self.opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port)
            except BaseException:
                self.opened -= 1
                raise
        return await self.idle.get()

    def give_back(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], *, reusable: bool) -> None:
        if reusable:
            self.idle.put_nowait(connection)
        else:
            connection[1].close()
            self.opened -= 1

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait()[1].close()


async def paced(
    host: str,
    port: int,
    request: Request,
    *,
    rate: float,
    seconds: float,
    max_connections: int = 64,
    timeout_s: float = 5.0,
) -> Outcome:
    """Send `rate` requests a second for `seconds` (request(i) gives the bytes of the i-th); wait for every answer."""
    outcome, connections = Outcome(), Connections(host, port, max_connections)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int, due: float) -> None:
        connection = None
        try:
            async with asyncio.timeout(timeout_s):
                connection = await connections.take()
                connection[1].write(request(i))
                status, reusable = await _read_response(connection[0])
            connections.give_back(connection, reusable=reusable)
            outcome.latencies_ms.append((loop.time() - due) * 1000)
            if status >= 400:
                outcome.bad_status += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            if connection is not None:
                connections.give_back(connection, reusable=False)

    tasks = set()
    total = int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        outcome.sent += 1
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s + 1)
    for task in list(tasks):
        task.cancel()
    connections.close()
    return outcome


def summary(outcome: Outcome, rate: float, seconds: float) -> dict[str, float | int]:
    """The figures of a run, as api_bench reports them."""
    latencies = outcome.latencies_ms or [0.0]  # nothing answered: every request counts as an error
    return {
        "offered_per_s": rate,
        "answered_per_s": round(len(outcome.latencies_ms) / seconds),
        "sent": outcome.sent,
        "errors": outcome.errors,
        **{f"p{q}_ms": round(percentile(latencies, q / 100), 2) for q in (50, 95, 99)},
        "max_ms": round(max(latencies), 2),
    }
