"""An HTTP/1.1 client that sends the request target byte for byte, for probing gateways with hostile paths.

httpx (like every full client) normalises dot segments before sending: `/auth/../metrics` would leave
as `/metrics`, so it cannot show what a gateway does with the path a hostile client really sends.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RawResponse:
    """A response as received: status, headers (names lower-cased) and the decoded body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, if present."""
        return next((v for k, v in self.headers if k == name.lower()), None)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return bytes(out)


async def raw_request(
    host: str, port: int, method: str, target: bytes, headers: list[tuple[str, str]] | None = None, body: bytes = b""
) -> RawResponse:
    """Send one request with `target` exactly as given, over a fresh connection, and read the whole answer."""
    lines = [
        f"{method} ".encode() + target + b" HTTP/1.1",
        f"host: {host}:{port}".encode(),
        b"connection: close",
        f"content-length: {len(body)}".encode(),
    ]
    lines += [f"{k}: {v}".encode("latin-1") for k, v in headers or []]
    async with asyncio.timeout(_TIMEOUT_S):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in header_lines)]
    response = RawResponse(int(status_line.split()[1]), parsed, payload)
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        return RawResponse(response.status, parsed, _dechunk(payload))
    return response
