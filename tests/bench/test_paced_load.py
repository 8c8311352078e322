"""The paced client counts each latency from the request's scheduled time: a stall shows in every request it delays."""

from __future__ import annotations

import asyncio

from paced_load import paced, summary


async def test_a_stall_delays_every_request_scheduled_during_it() -> None:
    answered = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            answered += 1
            if answered == 10:
                await asyncio.sleep(0.3)  # one slow answer on the only connection
            status = b"404 Not Found" if answered == 20 else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        outcome = await paced(
            "127.0.0.1", port, lambda i: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", rate=200, seconds=0.5, max_connections=1
        )
    figures = summary(outcome, 200, 0.5)
    assert outcome.sent == 100 and len(outcome.latencies_ms) == 100
    assert figures["errors"] == 1  # the 404
    # About 60 requests fall due during the 300 ms stall; a closed loop would have counted one slow request.
    assert sum(latency > 50 for latency in outcome.latencies_ms) >= 40, sorted(outcome.latencies_ms)[-70:]
    assert figures["max_ms"] >= 250
