"""What the APIs refuse before routing: bodies over the cap and NUL characters anywhere in a request.

Postgres cannot store NUL (U+0000) in text and answers an error mid-request; SQLite stores it and other
tools cut strings at it. Refusing it as input, once for every route, keeps both databases alike.
"""

from __future__ import annotations

import json

from starlette.types import Message, Receive, Scope, Send

from pricealert.common.errors import error_body

MAX_BODY_BYTES = 64 * 1024
TOO_LARGE_BODY = error_body("payload_too_large", f"The body may be at most {MAX_BODY_BYTES} bytes.")
TOO_LARGE = json.dumps(TOO_LARGE_BODY, separators=(",", ":")).encode()
_FORM = b"application/x-www-form-urlencoded"
_JSON_NUL = b"\\u0000"
_BACKSLASH = ord("\\")


def _json_escapes_a_nul(body: bytes) -> bool:
    """Whether JSON text holds the escape \\u0000 (after an escaped backslash, `\\u0000` is plain text)."""
    start = body.find(_JSON_NUL)
    while start != -1:
        before = start - 1
        while before >= 0 and body[before] == _BACKSLASH:
            before -= 1
        if (start - before) % 2 == 1:  # the escape's own backslash plus an even run of escaped ones
            return True
        start = body.find(_JSON_NUL, start + 1)
    return False


def nul_location(scope: Scope, body: bytes, content_type: bytes | None) -> str | None:
    """Where the request carries a NUL character ("path", "query" or "body"), or None."""
    # `0 in data` (memchr) and find() are several times cheaper than `b"..." in data` on every request.
    if "\x00" in scope["path"]:
        return "path"
    query: bytes = scope["query_string"]
    if query and (0 in query or query.find(b"%00") != -1):
        return "query"
    if not body:
        return None
    if 0 in body:
        return "body"
    if content_type is not None and content_type.startswith(_FORM):
        return "body" if body.find(b"%00") != -1 else None
    return "body" if _json_escapes_a_nul(body) else None


def nul_refusal(location: str) -> bytes:
    """The 422 answer to a NUL character at `location`, in the shape of the APIs' validation errors."""
    details = [{"loc": [location], "msg": "NUL characters (U+0000) are not allowed", "type": "nul_character"}]
    return json.dumps(
        error_body("validation_error", "The request is invalid.", details), separators=(",", ":")
    ).encode()


# Content-Length, X-Request-ID, Content-Type and Transfer-Encoding of a request (None where absent).
Heads = tuple[bytes | None, bytes | None, bytes | None, bytes | None]


def first_headers(scope: Scope) -> Heads:
    """The headers the guard reads; the first of each, as Starlette's Headers.get finds them."""
    # One dict built in C beats a Python loop comparing names (reversed: the first occurrence wins).
    found = dict(reversed(scope["headers"]))
    return (
        found.get(b"content-length"),
        found.get(b"x-request-id"),
        found.get(b"content-type"),
        found.get(b"transfer-encoding"),
    )


async def take_body(heads: Heads, receive: Receive, send: Send) -> tuple[bytes, Receive] | None:
    """The body (empty if none was sent) and a receive that gives it again; None once answered 413 or left."""
    length, _, _, chunked = heads
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        await send_json(send, 413, TOO_LARGE)
        return None
    # No body to read: GET /alerts, the hot read, goes on at once.
    if chunked is None and (length is None or length == b"0"):
        return b"", receive
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        # The usual small body, in one message: given again as it came.
        body: bytes = message.get("body", b"")
        if len(body) <= MAX_BODY_BYTES:
            return body, replay(message, receive)
    whole = await read_rest(message, receive)
    if whole is None:
        if message["type"] == "http.request":  # too long without a Content-Length (or the client left mid-body)
            await send_json(send, 413, TOO_LARGE)
        return None
    return whole, replay({"type": "http.request", "body": whole, "more_body": False}, receive)


async def read_rest(first: Message, receive: Receive) -> bytes | None:
    """The whole body that `first` starts; None if the client left or it is longer than MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    message = first
    while message["type"] == "http.request":
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()
    return None


def replay(message: Message, receive: Receive) -> Receive:
    """A receive that gives `message` (the whole body) first, then reads on (e.g. a disconnect)."""
    pending = [message]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def send_json(send: Send, status: int, body: bytes) -> None:
    """Answer with a JSON body already encoded."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
