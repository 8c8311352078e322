"""Bulk appends to streams as raw RESP on one connection (index_load.py's way): building 200 000 XADDs through
redis-py's pipeline took longer than the evaluator takes to drain them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from index_load import address_of, send_raw
from redis.asyncio import Redis


def _bulk(text: str) -> str:
    return f"${len(text.encode())}\r\n{text}\r\n"


def xadd(stream: str, fields: dict[str, str]) -> str:
    """`XADD stream * field value ...` as RESP text."""
    parts = "".join(_bulk(k) + _bulk(v) for k, v in fields.items())
    return f"*{2 * len(fields) + 3}\r\n$4\r\nXADD\r\n{_bulk(stream)}$1\r\n*\r\n{parts}"


async def xadd_all(redis: Redis, entries: Iterable[tuple[str, dict[str, str]]], *, chunk: int = 20_000) -> None:
    """Append each (stream, fields) in order, `chunk` commands a write; Redis takes a chunk while the next is made."""
    host, port = address_of(redis)
    sending: asyncio.Task[None] | None = None
    batch: list[bytes] = []

    async def flush() -> None:
        nonlocal sending, batch
        if sending:
            await sending
        sending = asyncio.create_task(asyncio.to_thread(send_raw, host, port, batch, reply_lines=2)) if batch else None
        batch = []

    for stream, fields in entries:
        batch.append(xadd(stream, fields).encode())
        if len(batch) >= chunk:
            await flush()
    await flush()
    if sending:
        await sending
